/**
 * Taking docker off the flannel subnet. Without kflan's drop-in docker starts with no --bip, but
 * it keeps the default bridge's last address (its network store restores docker0 before the
 * daemon picks a pool from it), so once it is started with its own default address pools, which
 * makes it drop docker0 and choose a pool the way a fresh docker does (skipping pools that
 * overlap a route). The flag lives in a runtime drop-in for that one start only.
 */
import {unitCmdline} from '../render/escape.js'

/** dockerd's built-in default address pools (libnetwork ipamutils), as `--default-address-pool` values. */
export const DOCKER_DEFAULT_POOLS = [
  'base=172.17.0.0/16,size=16',
  'base=172.18.0.0/16,size=16',
  'base=172.19.0.0/16,size=16',
  'base=172.20.0.0/14,size=16',
  'base=172.24.0.0/14,size=16',
  'base=172.28.0.0/14,size=16',
  'base=192.168.0.0/16,size=20',
]

/** The one-start drop-in (pure): the unit's own ExecStart plus the default pools. */
export function poolsDropIn(execStart: string): string {
  return [
    '# Written by `kflan reset` for one start of docker, removed right after it:',
    '# docker picks the default bridge address again instead of the flannel subnet it remembers.',
    '[Service]',
    'ExecStart=',
    `ExecStart=${unitCmdline('docker.service ExecStart', execStart)} ${DOCKER_DEFAULT_POOLS.map((p) => `--default-address-pool ${p}`).join(' ')}`,
    '',
  ].join('\n')
}

export {RESET_DOCKER_DROPIN} from './facts.js'
