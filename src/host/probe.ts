/**
 * The host fact model's machinery: a probe is ONE shell fragment and ONE pure parser. A command
 * (init/join, doctor, reset) composes the probes it needs into one script per host, read in one
 * round trip; each probe's output comes back as its own section and goes to its own parser.
 *
 * - Foreground probes print their section in script order (their own stderr is theirs to drop).
 * - Background probes (slow ones: firewall-cmd, iptables, etcdctl) start first and run in
 *   parallel; their stdout, stderr and exit code come back as three sections.
 * - A probe may read a unit property with `unit NAME PROPERTY`: the script runs ONE
 *   `systemctl show` for every unit any of its probes names (each call is a D-Bus round trip).
 */
import {performance} from 'node:perf_hooks'

import type {ExecOptions, Remote} from '../remote/ssh.js'

import {shq} from '../remote/shell.js'

/** A command's outcome; rc null when it did not run, was killed, or ran in the foreground. */
export interface RunOut {
  stdout: string
  stderr: string
  rc: number | null
}

/** What a parser gets besides its section: where to put warnings, and when the script ran. */
export interface ParseContext {
  warnings: string[]
  /** Local wall clock (ms) when the script was sent and its output received. */
  sendMs: number
  recvMs: number
}

export interface Probe<T> {
  /** Section name, unique within a script: [a-z0-9_-]. */
  id: string
  /** The shell fragment (POSIX sh; `has TOOL` and `unit NAME PROP` are defined). */
  sh: string
  /** Run in the background with the slow probes. */
  background?: boolean
  /** Units whose properties this probe reads with `unit` (or prints, for the units probe). */
  units?: string[]
  /** The pure parser; `out.present` is false when the section is missing from the output. */
  parse(out: RunOut & {present: boolean}, ctx: ParseContext): T
}

export type ProbeSet = Record<string, Probe<unknown>>
export type Results<P extends ProbeSet> = {[K in keyof P]: P[K] extends Probe<infer T> ? T : never}

/** The systemd properties read for every unit (one list for every command). */
export const UNIT_PROPERTIES = [
  'Id',
  'LoadState',
  'ActiveState',
  'SubState',
  'Result',
  'MainPID',
  'UnitFileState',
  'ExecStart',
  'FragmentPath',
  'DropInPaths',
]

export const PRELUDE = [
  'LC_ALL=C; export LC_ALL',
  `s() { printf '\\n@@kflan:%s@@\\n' "$1"; }`,
  'has() { command -v "$1" >/dev/null 2>&1; }',
]

/** The script of a set of probes (pure). */
export function probeScript(probes: Probe<unknown>[]): string {
  const ids = new Set<string>()
  for (const p of probes) {
    if (!/^[a-z0-9_-]+$/.test(p.id) || ids.has(p.id)) throw new Error(`probe id ${p.id}: invalid or repeated`)
    ids.add(p.id)
  }

  const units = [...new Set(probes.flatMap((p) => p.units ?? []))]
  const bg = probes.filter((p) => p.background)
  const lines = [...PRELUDE]
  // A temporary directory only when a probe needs one (a lone `date` stays a lone `date`).
  if (units.length > 0 || bg.length > 0)
    lines.push(
      'T=$(mktemp -d /tmp/kflan-probe.XXXXXX) || exit 97',
      `trap 'rm -rf "$T"' EXIT`,
      // j NAME CMD: CMD in the background; stdout, stderr and exit code become NAME, NAME--err, NAME--rc.
      // (eval in a subshell of its own: a command that calls `exit` still gets its code recorded.)
      `j() { ( ( eval "$2" ) >"$T/$1.o" 2>"$T/$1.e"; echo $? >"$T/$1.r" ) & }`,
    )
  if (units.length > 0) {
    lines.push(
      `systemctl show ${units.map(shq).join(' ')} ${UNIT_PROPERTIES.map((p) => `-p ${p}`).join(' ')} >"$T/units" 2>/dev/null`,
      // unit NAME PROPERTY: a property of one unit from that output.
      `unit() { awk -v id="$1" -v p="$2=" 'BEGIN { RS = "" } index("\\n" $0 "\\n", "\\nId=" id "\\n") { n = split($0, l, "\\n"); for (i = 1; i <= n; i++) if (index(l[i], p) == 1) print substr(l[i], length(p) + 1) }' "$T/units"; }`,
    )
  }

  lines.push(...bg.map((p) => `j ${p.id} ${shq(p.sh)}`))
  for (const p of probes) if (!p.background) lines.push(`s ${p.id}; ${p.sh}`)
  if (bg.length > 0) {
    lines.push(
      'wait',
      `for n in ${bg.map((p) => p.id).join(' ')}; do s "$n"; cat "$T/$n.o"; s "$n--err"; cat "$T/$n.e"; s "$n--rc"; cat "$T/$n.r" 2>/dev/null; done`,
    )
  }

  lines.push('s end', '')
  return lines.join('\n')
}

/** Splits a script's output into sections (pure). */
export function splitSections(out: string): Map<string, string> {
  const m = new Map<string, string>()
  const re = /^@@kflan:([a-z0-9_-]+)@@$/gm
  const marks: {name: string; start: number; end: number}[] = []
  for (let x = re.exec(out); x; x = re.exec(out)) marks.push({name: x[1], start: x.index, end: x.index + x[0].length})
  for (const [i, mk] of marks.entries()) {
    const body = out.slice(mk.end + 1, i + 1 < marks.length ? marks[i + 1].start : out.length)
    m.set(mk.name, body.replace(/\n+$/, ''))
  }

  return m
}

/** One probe's output from the sections. */
export function probeOut(sec: Map<string, string>, id: string): RunOut & {present: boolean} {
  if (!sec.has(id)) return {stdout: '', stderr: '', rc: null, present: false}
  const rc = (sec.get(`${id}--rc`) ?? '').trim()
  return {
    stdout: sec.get(id) ?? '',
    stderr: sec.get(`${id}--err`) ?? '',
    rc: /^\d+$/.test(rc) ? Number(rc) : null,
    present: true,
  }
}

/** Parses a script's output with each probe's parser (pure). */
export function parseProbes<P extends ProbeSet>(
  probes: P,
  out: string,
  times: {sendMs: number; recvMs: number},
): Results<P> & {warnings: string[]; complete: boolean} {
  const sec = splitSections(out)
  const ctx: ParseContext = {warnings: [], ...times}
  const complete = sec.has('end')
  if (!complete) ctx.warnings.push('facts output is incomplete (no end marker)')
  const results: Record<string, unknown> = {}
  for (const [k, p] of Object.entries(probes)) results[k] = p.parse(probeOut(sec, p.id), ctx)
  return {...(results as Results<P>), warnings: ctx.warnings, complete}
}

/** Runs a set of probes on a host in one round trip (as root) and parses their output. */
export async function runProbes<P extends ProbeSet>(
  remote: Remote,
  probes: P,
  opts: Pick<ExecOptions, 'logOutput' | 'sudo' | 'timeoutMs'> = {},
): Promise<Results<P> & {warnings: string[]; complete: boolean; gatherMs: number}> {
  const script = probeScript(Object.values(probes))
  const sendMs = Date.now()
  const t0 = performance.now()
  const r = await remote.run('sh -s', {stdin: script, ...opts})
  const elapsed = performance.now() - t0
  return {...parseProbes(probes, r.stdout, {sendMs, recvMs: sendMs + elapsed}), gatherMs: elapsed}
}

/** Runs one probe on its own (a re-read after a change, e.g. docker0 after docker restarted). */
export async function readProbe<T>(
  remote: Remote,
  probe: Probe<T>,
  opts: Pick<ExecOptions, 'sudo' | 'timeoutMs'> = {},
): Promise<T> {
  return (await runProbes(remote, {value: probe}, opts)).value as T
}

/** A command run in the background whose stdout, stderr and exit code are the fact (etcdctl reads). */
export function commandProbe(id: string, sh: string): Probe<RunOut | undefined> {
  return {id, sh, background: true, parse: ({present, ...run}) => (present ? run : undefined)}
}

/** `key=value` lines → a record (pure). */
export function kv(text: string, sep = '='): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const i = line.indexOf(sep)
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim()
  }

  return out
}

/** Non-blank lines (pure). */
export const lines = (t: string | undefined): string[] => (t ?? '').split('\n').filter((l) => l.trim() !== '')
