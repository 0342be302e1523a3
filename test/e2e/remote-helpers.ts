/**
 * Connecting to many lab hosts at once, for the SSH layer's e2e tests and bench/remote.ts (kflan
 * itself connects host by host in its connect phase, src/engine/connect.ts).
 */
import type {RemoteError} from '../../src/remote/errors.js'

import {BastionPool} from '../../src/remote/bastion.js'
import {type ConnectOptions, Remote, type TargetSpec} from '../../src/remote/ssh.js'

export interface ConnectResult {
  target: TargetSpec
  remote?: Remote
  error?: RemoteError | Error
}

export interface ConnectAllResult {
  /** One per target, in the order given. */
  results: ConnectResult[]
  remotes: Remote[]
  failures: {target: TargetSpec; error: RemoteError | Error}[]
}

/** Connects to every target in parallel; a bad host is reported, never thrown. Bastions are shared. */
export async function connectAll(targets: TargetSpec[], opts: ConnectOptions): Promise<ConnectAllResult> {
  const pool = opts.bastionPool ?? new BastionPool()
  const results = await Promise.all(
    targets.map(async (target): Promise<ConnectResult> => {
      try {
        return {target, remote: await Remote.connect(target, {...opts, bastionPool: pool})}
      } catch (error) {
        return {target, error: error as Error}
      }
    }),
  )
  return {
    results,
    remotes: results.flatMap((r) => (r.remote ? [r.remote] : [])),
    failures: results.flatMap((r) => (r.error ? [{target: r.target, error: r.error}] : [])),
  }
}
