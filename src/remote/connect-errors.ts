/** Turns whatever ssh2 / node-ssh threw while connecting into one of the SSH layer's typed errors. */
import type {Endpoint} from './types.js'

import {AuthError, RemoteError, UnreachableHostError} from './errors.js'

/** Turns whatever ssh2 / node-ssh threw during connect into one of our typed errors. */
export function classifyConnectError(
  err: unknown,
  ep: Endpoint & {name: string; via?: string; timeoutMs: number},
): RemoteError {
  if (err instanceof RemoteError) return err
  const e = err as {message?: string; level?: string; code?: string}
  const msg = e?.message ?? String(err)
  const base = {host: ep.name, address: ep.address, port: ep.port, user: ep.user, via: ep.via, cause: err}
  if (e?.level === 'client-authentication') {
    const methods = [
      ep.identityFile && `key ${ep.identityFile}`,
      ep.useAgent && 'ssh-agent',
      ep.password !== undefined && 'password',
    ]
      .filter(Boolean)
      .join(', ')
    return new AuthError(
      ep.name,
      `authentication as ${ep.user}@${ep.address}:${ep.port} failed (tried: ${methods || 'nothing: no key, agent or password configured'})`,
      `Check the user and that its key is in ~${ep.user}/.ssh/authorized_keys on the host: try \`ssh ${ep.identityFile ? `-i ${ep.identityFile} ` : ''}-p ${ep.port} ${ep.user}@${ep.address}\`.`,
      err,
    )
  }

  if (
    /encrypted private key|passphrase|cannot parse privatekey|unsupported key format|no valid private key/i.test(msg)
  ) {
    return new AuthError(
      ep.name,
      `cannot use identity file ${ep.identityFile ?? ''}: ${msg}`,
      'kflan cannot read passphrase-protected keys: load the key into ssh-agent (`ssh-add KEY`) and enable ssh.agent in the inventory, or use an unencrypted key.',
      err,
    )
  }

  if (e?.level === 'client-timeout' || /timed out/i.test(msg)) {
    return new UnreachableHostError({
      ...base,
      reason: 'timeout',
      detail: `no SSH answer within ${Math.round(ep.timeoutMs / 1000)}s`,
    })
  }

  const code = e?.code ?? /\b(E[A-Z]{3,})\b/.exec(msg)?.[1]
  if (
    code &&
    /^(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|ECONNRESET|EPIPE|EADDRNOTAVAIL)$/.test(code)
  ) {
    const detail =
      code === 'ECONNREFUSED'
        ? 'connection refused (port closed)'
        : code === 'ENOTFOUND'
          ? 'unknown host name'
          : code === 'EHOSTUNREACH'
            ? 'no route to host'
            : `${code}`
    return new UnreachableHostError({...base, reason: code, detail})
  }

  if (/No response from server|Not connected|connection (lost|closed)/i.test(msg)) {
    return new UnreachableHostError({...base, reason: 'closed', detail: 'connection closed before SSH was ready'})
  }

  if (/open failed|Channel open failure|administratively prohibited|Connection refused/i.test(msg)) {
    // forwardOut through a bastion: the bastion could not open the TCP connection.
    return new UnreachableHostError({
      ...base,
      reason: /refused/i.test(msg) ? 'ECONNREFUSED' : 'forward',
      detail: `bastion could not connect: ${msg}`,
    })
  }

  if (e?.level === 'handshake' || e?.level === 'protocol' || /handshake|no matching/i.test(msg)) {
    return new UnreachableHostError({...base, reason: 'handshake', detail: msg})
  }

  return new UnreachableHostError({...base, reason: 'error', detail: msg})
}
