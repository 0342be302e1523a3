/** File contents read from the host: kflan's files and certificates (doctor), private keys (never logged). */
import {shq} from '../remote/shell.js'
import {type Probe} from './probe.js'

/** Contents by path; undefined when missing or unreadable. */
export type FileContents = Record<string, string | undefined>

/** The probe's output: `@@f:N@@` then `present` and the content, or `absent` (pure). */
export function parseFileContents(text: string, paths: string[]): FileContents {
  const out: FileContents = {}
  const parts = `\n${text}`.split(/\n@@f:(\d+)@@\n/)
  const byIndex = new Map<number, string>()
  // Trailing newlines are not kept (as for every section): readers compare without them.
  for (let i = 1; i + 1 < parts.length; i += 2) byIndex.set(Number(parts[i]), parts[i + 1].replace(/\n+$/, ''))
  for (const [i, p] of paths.entries()) {
    const body = byIndex.get(i)
    const nl = body === undefined ? -1 : body.indexOf('\n')
    const head = body === undefined ? '' : nl === -1 ? body : body.slice(0, nl)
    out[p] = head.trim() === 'present' ? (nl === -1 ? '' : body!.slice(nl + 1)) : undefined
  }

  return out
}

export function fileContentsProbe(paths: string[], id = 'files'): Probe<FileContents> {
  return {
    id,
    sh:
      paths
        .map(
          (f, i) =>
            `printf '\\n@@f:${i}@@\\n'; if [ -r ${shq(f)} ]; then echo present; cat ${shq(f)}; else echo absent; fi`,
        )
        .join('; ') || ':',
    parse: (o) => parseFileContents(o.stdout, paths),
  }
}
