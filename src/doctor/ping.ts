/**
 * The data-plane pings: from a host's docker0 address to every target at once, one round trip
 * (script building and parsing pure).
 */
import type {Remote} from '../remote/ssh.js'
import type {PingResult} from './types.js'

import {shq} from '../remote/shell.js'

/** Pings from `source` (its docker0 address) to every target, all at once (pure). */
export function pingScript(source: string, targets: {address: string}[]): string {
  const lines = [
    'LC_ALL=C; export LC_ALL',
    'command -v ping >/dev/null 2>&1 || { echo "#no-ping"; exit 0; }',
    `p() { out=$(ping -n -q -c 1 -W 1 -I "$1" "$2" 2>&1); rc=$?; printf '%s %s %s\\n' "$2" "$rc" "$(printf '%s' "$out" | sed -n 's|^rtt[^=]*= \\([0-9.]*\\)/.*|\\1|p')"; }`,
    ...targets.map((t) => `p ${shq(source)} ${shq(t.address)} &`),
    'wait',
    '',
  ]
  return lines.join('\n')
}

export function parsePingOutput(out: string, targets: {target: string; address: string}[]): PingResult[] {
  if (out.includes('#no-ping'))
    return targets.map((t) => ({...t, ok: false, detail: 'ping is not installed on the source host'}))
  const seen = new Map<string, {rc: number; rtt?: number}>()
  for (const line of out.split('\n')) {
    const [addr, rc, rtt] = line.trim().split(/\s+/)
    if (addr && rc !== undefined && /^\d+$/.test(rc))
      seen.set(addr, {rc: Number(rc), rtt: rtt ? Number(rtt) : undefined})
  }

  return targets.map((t) => {
    const r = seen.get(t.address)
    if (!r) return {...t, ok: false, detail: 'no answer from the ping script'}
    if (r.rc === 0) return {...t, ok: true, rttMs: r.rtt}
    return {...t, ok: false, detail: r.rc === 1 ? 'no reply within 1 s' : `ping exited ${r.rc}`}
  })
}

export async function pingFrom(
  remote: Remote,
  source: string,
  targets: {target: string; address: string}[],
): Promise<PingResult[]> {
  if (targets.length === 0) return []
  const r = await remote.run('sh -s', {stdin: pingScript(source, targets), timeoutMs: 10_000})
  return parsePingOutput(r.stdout, targets)
}
