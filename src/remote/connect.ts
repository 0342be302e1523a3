import {NodeSSH} from 'node-ssh'
/**
 * Opening one authenticated SSH hop (a target, or a bastion): credentials (key file, ssh-agent,
 * password), the host key checked against kflan's known_hosts and the inventory's pin (and recorded
 * when trusted anew), ssh2's connect with a timeout, errors mapped to typed ones, and the log entry.
 */
import {promises as fsp} from 'node:fs'
import {performance} from 'node:perf_hooks'

import type {ConnectOptions, Endpoint, HostKeyInfo} from './types.js'

import {classifyConnectError} from './connect-errors.js'
import {AuthError, HostKeyError} from './errors.js'
import {decideHostKey, hostKeyAlgorithmsFor, type HostKeyDecision, hostKeyError} from './hostkey-trust.js'
import {knownHostId, readKnownHosts, recordHostKey} from './hostkeys.js'
import {type LogEntry, nullLogger} from './logger.js'

export const DEFAULT_CONNECT_TIMEOUT = 8000

/** The error a connect step raises when its time is up (classified as a timeout). */
export const handshakeTimeout = (): Error =>
  Object.assign(new Error('Timed out while waiting for handshake'), {level: 'client-timeout'})

export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms)
    }),
  ])
}

/**
 * Opens one authenticated SSH connection with host key verification. `sock` is a forwarded
 * channel when going through a bastion.
 */
export async function openSsh(
  ep: Endpoint,
  opts: ConnectOptions,
  sock?: unknown,
  via?: string,
): Promise<{ssh: NodeSSH; hostKey: HostKeyInfo; connectMs: number}> {
  const logger = opts.logger ?? nullLogger
  const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT
  const t0 = performance.now()
  const ts = new Date().toISOString()
  const ctx = {...ep, name: ep.label, via, timeoutMs}
  const entries = await readKnownHosts(opts.knownHostsPath)
  const hostId = knownHostId(ep.address, ep.port)
  let accepted: (Extract<HostKeyDecision, {ok: true}> & {key: Buffer}) | undefined
  let refusal: HostKeyError | undefined

  let privateKey: string | undefined
  if (ep.identityFile) {
    try {
      privateKey = await fsp.readFile(ep.identityFile, 'utf8')
    } catch (error) {
      throw new AuthError(
        ep.label,
        `cannot read identity file ${ep.identityFile}: ${(error as Error).message}`,
        'Check ssh.identityFile in the inventory (a path on this machine).',
        error,
      )
    }
  }

  const agent = ep.useAgent ? (opts.agentSocket ?? process.env.SSH_AUTH_SOCK) : undefined
  if (ep.useAgent && !agent) {
    throw new AuthError(
      ep.label,
      'ssh-agent requested but SSH_AUTH_SOCK is not set',
      'Start an agent (`eval $(ssh-agent)`; `ssh-add KEY`) or configure ssh.identityFile instead.',
    )
  }

  const serverHostKey = hostKeyAlgorithmsFor(entries, hostId)
  const config: Record<string, unknown> = {
    username: ep.user,
    port: ep.port,
    readyTimeout: timeoutMs,
    keepaliveInterval: opts.keepaliveIntervalMs ?? 10_000,
    keepaliveCountMax: 3,
    // Tarballs are already compressed; zlib would only burn CPU.
    algorithms: {compress: ['none'], ...(serverHostKey ? {serverHostKey} : {})},
    hostVerifier(key: Buffer) {
      let d: HostKeyDecision
      try {
        d = decideHostKey({entries, hostId, key, pin: ep.hostKey, acceptNew: opts.acceptNew})
      } catch (error) {
        refusal = new HostKeyError({
          host: ep.label,
          problem: 'unknown',
          fingerprint: '?',
          knownHostsPath: opts.knownHostsPath,
          message: `unreadable host key from ${hostId}: ${(error as Error).message}`,
          hint: 'The server sent a host key kflan cannot parse.',
        })
        return false
      }

      if (!d.ok) {
        refusal = hostKeyError({
          host: ep.label,
          hostId,
          decision: d,
          knownHostsPath: opts.knownHostsPath,
          pin: ep.hostKey,
        })
        return false
      }

      accepted = {...d, key: Buffer.from(key)}
      return true
    },
  }
  if (sock) config.sock = sock
  else config.host = ep.address
  if (privateKey !== undefined) config.privateKey = privateKey
  if (ep.password !== undefined) config.password = ep.password
  if (agent) config.agent = agent
  if (privateKey === undefined && ep.password === undefined && !agent) {
    throw new AuthError(
      ep.label,
      `no SSH credentials for ${ep.user}@${ep.address}`,
      'Set ssh.identityFile, ssh.agent or ssh.passwordEnv in the inventory.',
    )
  }

  const ssh = new NodeSSH()
  const log = (entry: Omit<LogEntry, 'ts'>) => logger.log(ep.label, {ts, ...entry})
  try {
    // ssh2's readyTimeout covers TCP connect + handshake + auth; the outer timeout is a backstop.
    await withTimeout(ssh.connect(config), timeoutMs + 2000, handshakeTimeout)
  } catch (error) {
    ssh.dispose()
    const mapped = refusal ?? classifyConnectError(error, ctx)
    if (accepted && accepted.action !== 'known' && mapped instanceof AuthError) {
      // The key itself was trusted: keep it, as ssh does, so the next try only has to fix auth.
      await recordHostKey(
        opts.knownHostsPath,
        hostId,
        accepted.key,
        `kflan:${ep.label}`,
        accepted.action === 'repinned' ? accepted.replaces : [],
      ).catch(() => undefined)
    }

    log({kind: 'connect', durationMs: performance.now() - t0, message: `failed: ${mapped.message}`})
    throw mapped
  }

  // Small request/response exchanges: Nagle + delayed ACK would add ~40 ms to each round trip.
  ;(ssh.connection as unknown as {setNoDelay?: (v: boolean) => void} | null)?.setNoDelay?.(true)
  if (!accepted) {
    ssh.dispose()
    throw new HostKeyError({
      host: ep.label,
      problem: 'unknown',
      fingerprint: '?',
      knownHostsPath: opts.knownHostsPath,
      message: `${hostId} presented no host key`,
      hint: 'Report this as a bug.',
    })
  }

  if (accepted.action !== 'known') {
    const replaces = accepted.action === 'repinned' ? accepted.replaces : []
    await recordHostKey(opts.knownHostsPath, hostId, accepted.key, `kflan:${ep.label}`, replaces)
    const how = {
      pinned: 'matched inventory hostKey',
      repinned: `changed, and matches the inventory's new hostKey (replaced line ${replaces.join(', ')})`,
      'accept-new': 'accepted new',
    }[accepted.action]
    logger.log(ep.label, {
      ts,
      kind: 'hostkey',
      message: `${how} ${accepted.keyType} ${accepted.fingerprint}; recorded in ${opts.knownHostsPath}`,
    })
  }

  const connectMs = performance.now() - t0
  log({
    kind: 'connect',
    durationMs: connectMs,
    message: `${ep.user}@${ep.address}:${ep.port}${via ? ` via ${via}` : ''} host key ${accepted.fingerprint} (${accepted.action})`,
  })
  return {
    ssh,
    hostKey: {fingerprint: accepted.fingerprint, keyType: accepted.keyType, action: accepted.action},
    connectMs,
  }
}
