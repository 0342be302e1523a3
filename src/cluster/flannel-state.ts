/** Reading what flanneld leaves on a host: the subnet file (pure parsers; leases: cluster/leases.ts). */

export interface SubnetEnv {
  network?: string
  /** FLANNEL_SUBNET: the host's gateway address with prefix, e.g. 10.244.5.1/24. */
  subnet?: string
  mtu?: number
  ipMasq?: boolean
}

export function parseSubnetEnv(text: string): SubnetEnv {
  const kv = new Map<string, string>()
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line)
    if (m) kv.set(m[1], m[2].trim().replace(/^"(.*)"$/, '$1'))
  }

  const mtu = kv.get('FLANNEL_MTU')
  return {
    network: kv.get('FLANNEL_NETWORK'),
    subnet: kv.get('FLANNEL_SUBNET'),
    mtu: mtu === undefined ? undefined : Number(mtu),
    ipMasq: kv.has('FLANNEL_IPMASQ') ? kv.get('FLANNEL_IPMASQ') === 'true' : undefined,
  }
}

/** 10.244.5.1/24 → 10.244.5.0/24 (the lease's subnet for a FLANNEL_SUBNET value). */
export function subnetOfGateway(gateway: string): string {
  const [ip, len] = gateway.split('/')
  const parts = ip.split('.').map(Number)
  const n = ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0
  const mask = Number(len) === 0 ? 0 : (0xff_ff_ff_ff << (32 - Number(len))) >>> 0
  const b = (n & mask) >>> 0
  return `${[b >>> 24, (b >>> 16) & 255, (b >>> 8) & 255, b & 255].join('.')}/${len}`
}
