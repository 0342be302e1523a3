/**
 * A connection target from an inventory host: address, user, credentials, bastion and host key pin.
 * Passwords come from the environment variables the inventory names, never from the inventory.
 */
import type {Host} from '../inventory/model.js'
import type {TargetSpec} from './types.js'

import {AuthError} from './errors.js'

/**
 * Builds a connection target from an inventory host, reading passwords from the environment
 * variables the inventory names (never from the inventory itself).
 */
export function targetFromHost(host: Host, env: NodeJS.ProcessEnv = process.env): TargetSpec {
  const fromEnv = (name: string | undefined, what: string): string | undefined => {
    if (!name) return undefined
    const v = env[name]
    if (v === undefined) {
      throw new AuthError(
        host.name,
        `${what} variable ${name} is not set`,
        `Export ${name} before running kflan (it holds the ${what} for ${host.name}).`,
      )
    }

    return v
  }

  const s = host.ssh
  return {
    name: host.name,
    address: host.address,
    port: s.port,
    user: s.user,
    identityFile: s.identityFile,
    password: fromEnv(s.passwordEnv, 'SSH password'),
    sudoPassword: fromEnv(s.sudoPasswordEnv, 'sudo password'),
    useAgent: s.agent,
    hostKey: host.hostKey,
    bastion: s.bastion
      ? {
          address: s.bastion.address,
          port: s.bastion.port,
          user: s.bastion.user,
          identityFile: s.bastion.identityFile ?? s.identityFile,
          password: fromEnv(s.bastion.passwordEnv, 'bastion SSH password'),
          useAgent: s.agent,
          hostKey: s.bastion.hostKey,
        }
      : undefined,
  }
}
