/**
 * A run against hosts: the log file, the run context, the phases, and closing every connection
 * whatever happens. Shared by init, join node, doctor and reset.
 */
import {mkdirSync} from 'node:fs'
import {join} from 'node:path'

import type {HostFacts} from '../host/facts.js'
import type {Cluster, Host} from '../inventory/model.js'

import {FileLogger} from '../remote/logger.js'
import {closeAll, type Remote} from '../remote/ssh.js'
import {connectPhase} from './connect.js'
import {type HostRun, type Phase, RunContext, type RunOptions} from './context.js'
import {handleStopSignals} from './interrupt.js'
import {type RunnerOptions, runPhases} from './runner.js'

export interface SessionOptions extends RunnerOptions, RunOptions {
  acceptNewHostKeys: boolean
}

export function knownHostsPath(stateDir: string): string {
  return join(stateDir, 'known_hosts')
}

export function newLogger(stateDir: string, command: string): FileLogger {
  const dir = join(stateDir, 'logs')
  mkdirSync(dir, {recursive: true, mode: 0o700})
  const stamp = new Date().toISOString().replaceAll(/[:.]/g, '-')
  return new FileLogger(join(dir, `${command}-${stamp}.log`), 'text')
}

export function newHostRun(host: Host): HostRun {
  return {
    host,
    remote: undefined as unknown as Remote, // set by the connect phase
    facts: undefined as unknown as HostFacts,
    changes: [],
    diffs: [],
    restart: new Set(),
    daemonReload: false,
  }
}

export interface SessionResult {
  ctx: RunContext
  /** Set when a phase failed: the run stopped after that phase. */
  error?: unknown
}

/** Connects to `hosts`, runs the phases, and always closes the connections and the log. */
export async function runSession(
  cluster: Cluster,
  stateDir: string,
  hosts: Host[],
  phases: Phase[],
  opts: SessionOptions,
  logger: FileLogger,
  targets?: Set<string>,
): Promise<SessionResult> {
  const ctx = new RunContext(cluster, stateDir, hosts.map(newHostRun), opts, logger, targets)
  const note = (message: string) => logger.log('-', {ts: new Date().toISOString(), kind: 'note', message})
  const unhandle = handleStopSignals({
    onFirst(signal) {
      note(`${signal} received: starting no new remote work, letting the commands in flight finish`)
      process.stderr.write(
        `\nkflan: ${signal} received: finishing the commands in flight, starting nothing new (send it again to exit at once)\n`,
      )
    },
    onSecond(signal) {
      note(`second signal (${signal}): exiting at once`)
      process.stderr.write(
        `\nkflan: exiting at once; the step in flight may not have finished (re-run to converge). log: ${logger.file}\n`,
      )
    },
  })
  try {
    const connect = connectPhase({knownHostsPath: knownHostsPath(stateDir), acceptNewHostKeys: opts.acceptNewHostKeys})
    await runPhases(ctx, [connect, ...phases], opts)
    return {ctx}
  } catch (error) {
    return {ctx, error}
  } finally {
    unhandle()
    await closeAll(ctx.hosts.map((h) => h.remote).filter(Boolean))
    // The full change list, whatever the screen shows (the summary, or --verbose).
    for (const h of ctx.hosts) {
      if (h.changes.length === 0) continue
      const verb = ctx.dryRun ? 'would change' : 'changed'
      logger.log(h.host.name, {
        ts: new Date().toISOString(),
        kind: 'note',
        message: `${verb} ${h.changes.length}:\n${h.changes.map((c) => `  - ${c}`).join('\n')}`,
      })
    }

    logger.close()
  }
}
