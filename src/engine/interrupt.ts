/**
 * SIGINT and SIGTERM during a run against hosts (init, join node, reset).
 *
 * The first signal stops kflan from starting new remote work: host tasks not yet started are
 * skipped, the phase after the one running is not started, waits (polls) stop. Commands already
 * sent to a host are let finish or time out (their SSH timeouts apply), because a remote step cut
 * in half is what makes a host inconsistent; remote writes are atomic, so a finished step is
 * whole. The run then ends like a failed one: what was changed so far, the log path, and exit
 * 130 (SIGINT) or 143 (SIGTERM), the shell's 128 + signal number.
 *
 * A second signal exits at once with the same code (after naming the log): nothing kflan wrote
 * is half a file, but the step in flight may not have finished; re-running converges.
 *
 * listr2 registers its own SIGINT handler that exits 127 at once; the runner turns it off
 * (`registerSignalListeners: false`).
 */
import {KflanError} from '../errors.js'

export type StopSignal = 'SIGINT' | 'SIGTERM'

const SIGNAL_NUMBER: Record<StopSignal, number> = {SIGINT: 2, SIGTERM: 15}

/** 130 for SIGINT, 143 for SIGTERM. */
export function signalExitCode(signal: StopSignal): number {
  return 128 + SIGNAL_NUMBER[signal]
}

export class InterruptedError extends KflanError {
  constructor(readonly signal: StopSignal) {
    super(`interrupted by ${signal}: no new remote work was started after it; the commands in flight were let finish`, {
      exitCode: signalExitCode(signal),
      hint: 'run the same command again: it continues from where it stopped',
    })
    this.name = 'InterruptedError'
  }
}

let received: StopSignal | undefined

/** The signal that interrupted this run, if one did. */
export function interruptedBy(): StopSignal | undefined {
  return received
}

/** Throws InterruptedError once a stop signal arrived: call it before starting remote work. */
export function throwIfInterrupted(): void {
  if (received) throw new InterruptedError(received)
}

/**
 * Installs the handlers for one run; returns their removal. `onFirst` is told of the first signal
 * (to log it and say what happens now), `onSecond` right before the immediate exit.
 */
export function handleStopSignals(hooks: {
  onFirst(signal: StopSignal): void
  onSecond(signal: StopSignal): void
}): () => void {
  const handler = (signal: StopSignal) => {
    if (received) {
      hooks.onSecond(signal)
      // eslint-disable-next-line n/no-process-exit, unicorn/no-process-exit -- a second Ctrl-C means "stop now": exit at once with the signal's code
      process.exit(signalExitCode(received))
    }

    received = signal
    hooks.onFirst(signal)
  }

  const onInt = () => handler('SIGINT')
  const onTerm = () => handler('SIGTERM')
  process.on('SIGINT', onInt)
  process.on('SIGTERM', onTerm)
  return () => {
    process.removeListener('SIGINT', onInt)
    process.removeListener('SIGTERM', onTerm)
  }
}
