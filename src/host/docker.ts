/** docker on the host: the binary, the running daemon's command line, the vendor unit, daemon.json. */
import {kv, type Probe} from './probe.js'

export const dockerdProbe: Probe<{path?: string; version?: string}> = {
  id: 'docker',
  sh: 'echo "dockerd=$(command -v dockerd 2>/dev/null)"; if has dockerd; then dockerd --version 2>/dev/null | head -n1; fi',
  parse(o) {
    const l = o.stdout.split('\n')
    return {
      path: kv(l[0] ?? '').dockerd || undefined,
      version: /version ([0-9][^\s,]*)/i.exec(l.slice(1).join('\n'))?.[1],
    }
  },
}

/** docker's main process command line (argv joined by spaces), undefined when not running. */
export const dockerdCmdlineProbe: Probe<string | undefined> = {
  id: 'dockerd',
  sh: String.raw`pid=$(unit docker.service MainPID); if [ -n "$pid" ] && [ "$pid" != 0 ]; then tr "\0" " " </proc/$pid/cmdline 2>/dev/null; fi`,
  units: ['docker.service'],
  parse: (o) => o.stdout.trim() || undefined,
}

/** The last `ExecStart=` line of docker.service's own unit file (its FragmentPath), without drop-ins (pure). */
export function parseVendorExecStart(text: string): string | undefined {
  return text
    .split('\n')
    .map((l) => l.replace(/^ExecStart=/, '').trim())
    .findLast(Boolean)
}

export const dockerVendorProbe: Probe<string | undefined> = {
  id: 'docker-vendor',
  sh: 'f=$(unit docker.service FragmentPath); if [ -n "$f" ] && [ -r "$f" ]; then grep -E "^ExecStart=" "$f"; fi',
  units: ['docker.service'],
  parse: (o) => parseVendorExecStart(o.stdout),
}

/** What /etc/docker/daemon.json sets that kflan would also pass as flags (docker refuses both). */
export interface DaemonJson {
  bip: boolean
  pools: boolean
}

export function parseDaemonJson(json: string): DaemonJson {
  try {
    const j = JSON.parse(json) as Record<string, unknown>
    return {bip: j.bip !== undefined, pools: j['default-address-pools'] !== undefined}
  } catch {
    // empty or unreadable: look for the keys
    return {bip: /"bip"\s*:/.test(json), pools: /"default-address-pools"\s*:/.test(json)}
  }
}

export const daemonJsonProbe: Probe<DaemonJson> = {
  id: 'daemon-json',
  sh: 'cat /etc/docker/daemon.json 2>/dev/null',
  parse: (o) => parseDaemonJson(o.stdout),
}
