/**
 * Clocks: the host's wall clock against the local one, and the spread between hosts. One rule for
 * init's preflight and the doctor: only the part of the spread that the round trips cannot explain
 * counts against the limit.
 */
import type {Probe} from './probe.js'

export interface Clock {
  /** Remote wall clock when the probe ran, ms since epoch. */
  remoteMs: number
  /** remote − local, ms; positive when the host is ahead. */
  skewMs: number
  /** ± bound on skewMs from the round-trip time. */
  uncertaintyMs: number
}

/** Clock skew from the remote `date +%s.%N` and the local send/receive times (pure). */
export function computeSkew(remoteEpoch: string, localSendMs: number, localRecvMs: number): Clock {
  const remoteMs = Number(remoteEpoch.trim().replace(/N$/, '0')) * 1000
  const mid = (localSendMs + localRecvMs) / 2
  return {remoteMs, skewMs: Math.round(remoteMs - mid), uncertaintyMs: Math.ceil((localRecvMs - localSendMs) / 2)}
}

/** The clock (NaN fields and a warning when it could not be read). */
export const clockProbe: Probe<Clock> = {
  id: 'clock',
  sh: 'date +%s.%N',
  parse(o, ctx) {
    const text = o.stdout.trim()
    const k = text ? computeSkew(text, ctx.sendMs, ctx.recvMs) : undefined
    if (k && Number.isFinite(k.skewMs)) return k
    ctx.warnings.push('no clock reading')
    return {remoteMs: Number.NaN, skewMs: Number.NaN, uncertaintyMs: Number.NaN}
  },
}

/**
 * The spread of several hosts' clocks (pure): seconds between the one most ahead and the one most
 * behind, and `certain`, what is left of it after the two readings' uncertainties. undefined with
 * fewer than two readings.
 */
export function clockSpread(
  readings: {name: string; clock: Clock}[],
): undefined | {spread: number; certain: number; ahead: string; behind: string} {
  const ok = readings.filter((r) => Number.isFinite(r.clock.skewMs))
  if (ok.length < 2) return undefined
  const max = ok.reduce((a, b) => (b.clock.skewMs > a.clock.skewMs ? b : a))
  const min = ok.reduce((a, b) => (b.clock.skewMs < a.clock.skewMs ? b : a))
  const spread = (max.clock.skewMs - min.clock.skewMs) / 1000
  const certain = Math.max(0, spread - (max.clock.uncertaintyMs + min.clock.uncertaintyMs) / 1000)
  return {spread, certain, ahead: max.name, behind: min.name}
}
