/** systemd units: one `systemctl show` for every unit a script asks about, one parser. */
import {kv, type Probe} from './probe.js'

export interface UnitState {
  /** `loaded`, `not-found`, `masked`, … ('' when systemctl is missing). */
  loadState: string
  /** `active`, `inactive`, `failed`, … */
  activeState: string
  subState?: string
  /** systemd's Result: `success`, `start-limit-hit`, `exit-code`, … */
  result?: string
  /** The main process (undefined when not running). */
  mainPid?: number
  unitFileState?: string
  fragmentPath?: string
  /** ExecStart as systemd resolved it (argv joined). */
  execStart?: string
  dropInPaths: string[]
  exists: boolean
  /** active, reloading or activating. */
  active: boolean
}

/** Parses `systemctl show` output; several units are separated by blank lines (pure). */
export function parseSystemctlShow(text: string): Record<string, string>[] {
  return text
    .split(/\n\s*\n/)
    .map((block) => kv(block))
    .filter((r) => Object.keys(r).length > 0)
}

/** `{ path=/usr/bin/dockerd ; argv[]=/usr/bin/dockerd -H fd:// ; ignore_errors=no ; … }` → the argv. */
export function parseExecStart(v: string | undefined): string | undefined {
  if (!v) return undefined
  const m = /argv\[\]=(.*?) ;/.exec(v)
  return m ? m[1].trim() : v.trim() || undefined
}

/** One unit's block of `systemctl show` (undefined: not in the output) → its state (pure). */
export function unitState(r: Record<string, string> | undefined): UnitState {
  const loadState = r?.LoadState ?? ''
  const activeState = r?.ActiveState ?? ''
  return {
    loadState,
    activeState,
    subState: r?.SubState || undefined,
    result: r?.Result || undefined,
    mainPid: Number(r?.MainPID ?? 0) || undefined,
    unitFileState: r?.UnitFileState || undefined,
    fragmentPath: r?.FragmentPath || undefined,
    execStart: parseExecStart(r?.ExecStart),
    dropInPaths: (r?.DropInPaths ?? '').split(/\s+/).filter(Boolean),
    exists: loadState !== '' && loadState !== 'not-found',
    active: activeState === 'active' || activeState === 'reloading' || activeState === 'activating',
  }
}

/** The units' states by name (every asked unit is in the result, `exists: false` when unknown). */
export function parseUnits(text: string, units: string[]): Record<string, UnitState> {
  const blocks = parseSystemctlShow(text)
  return Object.fromEntries(units.map((u) => [u, unitState(blocks.find((b) => b.Id === u))]))
}

export function unitsProbe(units: string[]): Probe<Record<string, UnitState>> {
  return {id: 'units', sh: 'cat "$T/units" 2>/dev/null', units, parse: (o) => parseUnits(o.stdout, units)}
}

/** The units kflan installs or drives. */
export const KFLAN_UNITS = ['etcd.service', 'flanneld.service', 'docker.service', 'firewalld.service']
