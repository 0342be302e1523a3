/**
 * Jump hosts: one SSH connection per bastion, shared (reference-counted) by the targets behind it,
 * and the forwarded TCP channel (`forwardOut`) that a target's own SSH session then runs over.
 */
import type {NodeSSH} from 'node-ssh'

import type {BastionSpec, ConnectOptions, TargetSpec} from './types.js'

import {classifyConnectError} from './connect-errors.js'
import {DEFAULT_CONNECT_TIMEOUT, handshakeTimeout, openSsh, withTimeout} from './connect.js'
import {RemoteError} from './errors.js'

/** A forwarded channel to a target through its bastion; `release` when the target's connection ends. */
export interface Tunnel {
  sock: unknown
  release: () => void
  /** The bastion, `user@address:port`, for messages. */
  via: string
}

/** Shares one connection per bastion between the targets behind it. */
export class BastionPool {
  private conns = new Map<string, {p: Promise<NodeSSH>; refs: number}>()

  async acquire(b: BastionSpec, opts: ConnectOptions): Promise<{ssh: NodeSSH; release: () => void; label: string}> {
    const key = `${b.user}@${b.address}:${b.port}`
    let c = this.conns.get(key)
    if (!c) {
      const p = openSsh({label: `bastion ${b.address}`, ...b}, opts).then((r) => r.ssh)
      c = {p, refs: 0}
      this.conns.set(key, c)
      p.catch(() => this.conns.delete(key))
    }

    const entry = c
    entry.refs++
    let ssh: NodeSSH
    try {
      ssh = await entry.p
    } catch (error) {
      entry.refs--
      throw error
    }

    let released = false
    return {
      ssh,
      label: key,
      release: () => {
        if (released) return
        released = true
        if (--entry.refs <= 0) {
          this.conns.delete(key)
          ssh.dispose()
        }
      },
    }
  }

  /** Opens a channel from the target's bastion to the target's SSH port. Throws a RemoteError naming the target. */
  async tunnel(target: TargetSpec & {bastion: BastionSpec}, opts: ConnectOptions): Promise<Tunnel> {
    const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT
    const b = await this.acquire(target.bastion, opts).catch((error: unknown) => {
      throw error instanceof RemoteError ? viaBastion(target.name, error) : error
    })
    try {
      const sock = await withTimeout(
        b.ssh.forwardOut('127.0.0.1', 0, target.address, target.port),
        timeoutMs,
        handshakeTimeout,
      )
      return {sock, release: b.release, via: b.label}
    } catch (error) {
      b.release()
      throw classifyConnectError(error, {...target, label: target.name, via: b.label, timeoutMs})
    }
  }
}

/** Says which host needed the bastion: a copy, since the targets behind one bastion share its error. */
function viaBastion(host: string, error: RemoteError): RemoteError {
  const copy = Object.assign(Object.create(Object.getPrototypeOf(error) as object) as RemoteError, error)
  Object.defineProperty(copy, 'message', {
    value: `${host}: via bastion: ${error.message}`,
    enumerable: false,
    writable: true,
    configurable: true,
  })
  Object.defineProperty(copy, 'stack', {value: error.stack, enumerable: false, writable: true, configurable: true})
  return copy
}
