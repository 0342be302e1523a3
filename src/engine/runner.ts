/**
 * Runs phases in order with listr2: a task per phase, a subtask per host, hosts concurrently.
 * A host that fails lets the others finish the phase; then the run stops with every failure.
 */
import {Listr, type ListrTask} from 'listr2'

import {hintOf, KflanError, messageOf} from '../errors.js'
import {HostFailure, type Phase, type RunContext} from './context.js'
import {interruptedBy, InterruptedError, throwIfInterrupted} from './interrupt.js'
import {listrOptions, type Output} from './listr.js'

export interface RunnerOptions {
  /** 'auto': the default renderer on a TTY, the simple one otherwise; 'silent' for tests. */
  output: Output
}

export class PhaseFailedError extends KflanError {
  constructor(
    readonly phase: string,
    readonly failures: HostFailure[],
  ) {
    const n = failures.length
    const lines = failures.map((f) => {
      const hint = hintOf(f.cause)
      // Errors from the remote layer already start with the host's name.
      const message = messageOf(f.cause).replace(new RegExp(`^${f.host}: `), '')
      return `  - ${f.host}: ${message}${hint ? `\n      hint: ${hint}` : ''}`
    })
    super(`failed on ${n} host${n === 1 ? '' : 's'} in phase ${phase}:\n${lines.join('\n')}`)
    this.name = 'PhaseFailedError'
  }
}

/** Phase boundaries in the log, with the time since the run started. */
function mark(ctx: RunContext, phase: string, part: string): void {
  ctx.logger.log('-', {
    ts: new Date().toISOString(),
    kind: 'note',
    message: `phase ${phase} (${part}) at +${Math.round(performance.now() - ctx.startedAt)} ms`,
  })
}

/** "0.4 s", "12 s": a phase's time, as its finished title shows it. */
export function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`
}

export async function runPhases(ctx: RunContext, phases: Phase[], opts: RunnerOptions): Promise<void> {
  const tasks: ListrTask[] = phases.map((phase) => ({
    title: phase.title,
    skip: () =>
      phase.kind === 'hosts' && !phase.runCluster && phase.hosts(ctx).length === 0 ? 'no host needs it' : false,
    async task(_, task) {
      throwIfInterrupted()
      const t0 = performance.now()
      const hosts = phase.kind === 'hosts' ? phase.hosts(ctx) : []
      if (phase.kind === 'hosts' && hosts.length > 0) {
        const runHost = phase.runHost.bind(phase)
        const failures: HostFailure[] = []
        mark(ctx, phase.name, 'hosts')
        await task
          .newListr(
            hosts.map((h) => ({
              title: h.host.name,
              async task(_c, sub) {
                // After a stop signal, hosts not started yet are left alone (see src/engine/interrupt.ts).
                if (interruptedBy()) return sub.skip(`${h.host.name}: not started (${interruptedBy()})`)
                const before = h.changes.length
                try {
                  await runHost(ctx, h)
                } catch (error) {
                  if (!(error instanceof InterruptedError))
                    failures.push(new HostFailure(h.host.name, phase.name, error))
                  throw error
                }

                const n = h.changes.length - before
                sub.title = `${h.host.name}: ${n === 0 ? 'ok' : `${n} change${n === 1 ? '' : 's'}${ctx.dryRun ? ' planned' : ''}`}`
              },
            })),
            {concurrent: ctx.options.concurrency, exitOnError: false},
          )
          .run()
        // The gate: every host finished the phase; stop if any failed.
        if (failures.length > 0) throw new PhaseFailedError(phase.name, failures)
      }

      throwIfInterrupted()
      if (phase.runCluster) {
        const runCluster = phase.runCluster.bind(phase)
        const cluster = async () => {
          mark(ctx, phase.name, 'cluster')
          try {
            await runCluster(ctx)
          } catch (error) {
            if (error instanceof PhaseFailedError || error instanceof InterruptedError) throw error
            throw new PhaseFailedError(phase.name, [new HostFailure('cluster', phase.name, error)])
          }
        }

        // After a per-host part, the cluster part is a step of its own under the phase.
        await (phase.kind === 'hosts'
          ? task.newListr([{title: phase.clusterTitle ?? 'whole cluster', task: cluster}], {exitOnError: true}).run()
          : cluster())
      }

      task.title = `${phase.title} (${formatSeconds(performance.now() - t0)})`
    },
  }))
  const list = new Listr(tasks, listrOptions(opts.output))
  await list.run()
}
