/**
 * Running one command on a session channel of an SSH connection: at most `max` channels at a time
 * (sshd's MaxSessions is shared with SFTP), retries while sshd refuses a new session, the remote
 * and local timeouts, stdin (a string, a buffer or a stream), and the exit code or signal.
 */
import {performance} from 'node:perf_hooks'
import {setTimeout as sleep} from 'node:timers/promises'

import type {ExecOptions, ExecResult, Ssh2Channel, Ssh2Client} from './types.js'

import {shq} from './shell.js'

/** A small counting semaphore: keeps concurrent channels under sshd's MaxSessions. */
export class Semaphore {
  private waiting: (() => void)[] = []
  private active = 0

  constructor(private readonly max: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.max)
      await new Promise<void>((r) => {
        this.waiting.push(r)
      })
    this.active++
    return () => {
      this.active--
      this.waiting.shift()?.()
    }
  }
}

/** Where a command's channel comes from: the connection (undefined once closed) and its channel slots. */
export interface ChannelSource {
  connection(): Ssh2Client | undefined
  slots: Semaphore
  /** The error to throw when the connection is gone. */
  closedError(detail: string): Error
}

/** A command line ready for the channel (already wrapped for sudo); `stdinPrefix` goes before any stdin. */
export interface WrappedCommand {
  command: string
  stdinPrefix?: string
}

/** sshd refused to open another session channel (MaxSessions reached, for the moment). */
export function isChannelRefusal(error: unknown): boolean {
  return /Channel open failure|open failed/i.test((error as Error)?.message ?? '')
}

/** What the caller measures: when the command started (performance.now()), and stdin bytes sent. */
export interface ChannelMeter {
  t0: number
  countStdin: (n: number) => void
}

/**
 * Opens a session channel (retrying while sshd refuses new sessions: MaxSessions is shared with
 * SFTP and with commands still finishing), runs the command, and resolves on channel close.
 * The channel slot is released only when the channel is really closed.
 */
export async function execOnChannel(
  source: ChannelSource,
  w: WrappedCommand,
  opts: ExecOptions,
  meter: ChannelMeter,
): Promise<ExecResult> {
  let {command} = w
  if (opts.timeoutMs) {
    // The remote side enforces the limit too, so a timed-out command does not linger on the
    // host holding a session slot. 124 / 137: timeout(1)'s codes.
    const secs = Math.max(1, Math.ceil(opts.timeoutMs / 1000))
    command = `timeout -k 2 ${secs} sh -c ${shq(w.command)}`
  }

  for (let attempt = 0; ; attempt++) {
    const conn = source.connection()
    if (!conn) throw source.closedError('connection is closed')
    const release = await source.slots.acquire()
    const r = await new Promise<ExecResult | 'retry'>((resolve, reject) => {
      conn.exec(command, (err, ch) => {
        if (err) {
          release()
          if (isChannelRefusal(err) && attempt < 25) resolve('retry')
          else reject(err)
          return
        }

        // Listeners go on synchronously: exit-status, EOF and close can arrive in the same
        // packet batch as the channel confirmation.
        runOnChannel(ch, w, opts, {...meter, release}).then(resolve, reject)
      })
    })
    if (r !== 'retry') return r
    await sleep(Math.min(50 * 2 ** attempt, 500))
  }
}

function runOnChannel(
  ch: Ssh2Channel,
  w: {stdinPrefix?: string},
  opts: ExecOptions,
  {t0, countStdin, release}: ChannelMeter & {release: () => void},
): Promise<ExecResult> {
  return new Promise<ExecResult>((resolve, reject) => {
    const out: Buffer[] = []
    const errOut: Buffer[] = []
    let code: number | null = null
    let signal: string | undefined
    let timedOut = false
    let done = false
    let released = false
    let timer: NodeJS.Timeout | undefined
    const free = () => {
      if (!released) {
        released = true
        release()
      }
    }

    const settle = (fn: () => void) => {
      if (done) return
      done = true
      if (timer) clearTimeout(timer)
      fn()
    }

    const finish = () =>
      settle(() => {
        const durationMs = performance.now() - t0
        if (opts.timeoutMs && (code === 124 || code === 137) && durationMs >= opts.timeoutMs) {
          timedOut = true
          code = null
        }

        resolve({
          code,
          signal,
          timedOut: timedOut || undefined,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(errOut).toString('utf8'),
          durationMs,
        })
      })
    ch.on('data', (d: Buffer) => out.push(d))
    ch.stderr.on('data', (d: Buffer) => errOut.push(d))
    ch.on('exit', (c: number | null, s?: string) => {
      if (typeof c === 'number') code = c
      else signal = s ?? undefined
    })
    ch.on('close', () => {
      free()
      finish()
    })
    ch.on('error', (e: Error) => settle(() => reject(e)))
    if (opts.timeoutMs) {
      // Backstop in case the remote timeout(1) cannot act (or the link hangs).
      timer = setTimeout(() => {
        timedOut = true
        code = null
        try {
          ch.signal('KILL')
          ch.close()
        } catch {
          /* channel already gone */
        }

        finish()
      }, opts.timeoutMs + 3000)
    }

    if (w.stdinPrefix) ch.write(w.stdinPrefix)
    const input = opts.stdin
    if (input === undefined) ch.end()
    else if (typeof input === 'string' || Buffer.isBuffer(input)) {
      countStdin(Buffer.byteLength(input))
      ch.end(input)
    } else {
      input.on('data', (d: Buffer) => countStdin(d.length))
      input.on('error', (e: Error) => {
        try {
          ch.close()
        } catch {
          /* ignore */
        }

        settle(() => reject(e))
      })
      input.pipe(ch as unknown as NodeJS.WritableStream)
    }
  })
}
