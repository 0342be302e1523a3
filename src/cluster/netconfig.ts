/** flannel's network config as stored in etcd: reading, comparing, and what may change at runtime. */
import {isDeepStrictEqual} from 'node:util'

export interface NetworkConfig {
  Network?: string
  SubnetLen?: number
  SubnetMin?: string
  SubnetMax?: string
  Backend?: {Type?: string; [k: string]: unknown}
  [k: string]: unknown
}

export function parseNetworkConfig(text: string): NetworkConfig | undefined {
  try {
    const v = JSON.parse(text) as unknown
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as NetworkConfig) : undefined
  } catch {
    return undefined
  }
}

export function sameConfig(a: NetworkConfig, b: NetworkConfig): boolean {
  return isDeepStrictEqual(a, b)
}

/**
 * Differences flannel cannot apply to a running network: existing leases keep the old Network
 * and backend. Returns human-readable differences (empty when compatible).
 */
export function incompatibleChanges(current: NetworkConfig, desired: NetworkConfig): string[] {
  const out: string[] = []
  if (current.Network !== desired.Network) out.push(`Network ${current.Network} → ${desired.Network}`)
  // The backend's MTU is not among them: kflan applies it by recreating the vxlan device
  // (src/init/flannel.ts), which a restarted flanneld alone would not do.
  const {MTU: _cm, ...cb} = current.Backend ?? {Type: 'udp'}
  const {MTU: _dm, ...db} = desired.Backend ?? {Type: 'udp'}
  if (!isDeepStrictEqual(cb, db)) out.push(`Backend ${JSON.stringify(cb)} → ${JSON.stringify(db)}`)
  if ((current.SubnetLen ?? 24) !== (desired.SubnetLen ?? 24))
    out.push(`SubnetLen ${current.SubnetLen} → ${desired.SubnetLen}`)
  return out
}
