/** An HTTP GET from the host itself (flanneld's /healthz and /readyz on loopback). */
import {shq} from '../remote/shell.js'
import {type Probe} from './probe.js'

/** The status code (undefined: no answer) and the body, or curl's error. */
export interface HttpProbe {
  url: string
  code?: number
  body: string
}

/** curl's output with `@code=NNN` on the last line; 'no-curl' when curl is missing (pure). */
export function parseHttpGet(text: string, url: string): HttpProbe | 'no-curl' {
  if (text.trim() === '#no-curl') return 'no-curl'
  const m = /\n?@code=(\d+)\s*$/.exec(text)
  const code = m && m[1] !== '000' ? Number(m[1]) : undefined
  return {url, code, body: (m ? text.slice(0, m.index) : text).trim()}
}

export function httpGetProbe(id: string, url: string): Probe<HttpProbe | 'no-curl' | undefined> {
  return {
    id,
    sh: `if has curl; then curl -sS -m 2 -w '\\n@code=%{http_code}' ${shq(url)} 2>&1; else echo "#no-curl"; fi`,
    parse: (o) => (o.present ? parseHttpGet(o.stdout, url) : undefined),
  }
}
