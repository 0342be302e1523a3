/**
 * The tail of a unit's journal, for error messages: when a service does not come up, the user
 * should read its own words ("no space left on device"), not only the client's timeout.
 */
import type {Remote} from './ssh.js'

/** Lines that say why a daemon failed (etcd's zap JSON or capnslog text, systemd's own lines). */
const FAILURE =
  /"level":"(error|fatal|panic|warn)"|\b(fatal|panic|error|failed|no space left|permission denied|read-only file system|cannot|unable to)\b/i

/**
 * The lines worth quoting from a journal tail (pure): the last `max` lines that look like a
 * failure, or the last `max` lines when none does. JSON lines (etcd's zap logger) are shortened
 * to their msg and error fields.
 */
export function journalExcerpt(text: string, max = 5): string[] {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && l !== '-- No entries --')
  const bad = lines.filter((l) => FAILURE.test(l))
  return (bad.length > 0 ? bad : lines).slice(-max).map(shorten)
}

function shorten(line: string): string {
  if (!line.startsWith('{')) return line.slice(0, 400)
  try {
    const j = JSON.parse(line) as {level?: string; msg?: string; error?: string}
    return [j.level, j.msg, j.error].filter(Boolean).join(': ').slice(0, 400)
  } catch {
    return line.slice(0, 400)
  }
}

/** The recent journal of `unit` on the host, reduced by journalExcerpt; [] when unreadable. */
export async function unitJournal(
  remote: Remote,
  unit: string,
  opts: {lines?: number; max?: number} = {},
): Promise<string[]> {
  const r = await remote
    .exec(`journalctl -u ${unit} -n ${opts.lines ?? 60} --no-pager -o cat 2>&1`, {timeoutMs: 10_000})
    .catch(() => undefined)
  return r && r.code === 0 ? journalExcerpt(r.stdout, opts.max) : []
}
