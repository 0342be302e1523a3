/** IPv4 address and CIDR arithmetic (pure). IPv6 is recognised for SANs, not for flannel networks. */
import {isIP} from 'node:net'

export interface Cidr {
  /** Network address as an unsigned 32-bit integer. */
  base: number
  prefix: number
}

export function isIPv4(s: string): boolean {
  return isIP(s) === 4
}

export function isIPAddress(s: string): boolean {
  return isIP(s) !== 0
}

export function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number)
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
}

/** Parses `a.b.c.d/n`; returns an error message or the CIDR (host bits must be zero). */
export function parseCidr(s: string): Cidr | string {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(s)
  if (!m || !isIPv4(m[1])) return `${JSON.stringify(s)} is not an IPv4 CIDR like 10.244.0.0/16`
  const prefix = Number(m[2])
  if (prefix > 32) return `${JSON.stringify(s)}: prefix length must be 0..32`
  const ip = ipToInt(m[1])
  const base = (ip & mask(prefix)) >>> 0
  if (base !== ip) return `${JSON.stringify(s)} has host bits set; did you mean ${intToIp(base)}/${prefix}?`
  return {base, prefix}
}

export function cidrToString(c: Cidr): string {
  return `${intToIp(c.base)}/${c.prefix}`
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix)
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ((ip & mask(c.prefix)) >>> 0) === c.base
}

export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && cidrContains(outer, inner.base)
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContainsCidr(a, b) || cidrContainsCidr(b, a)
}

/**
 * flannel's subnet defaults (pkg/subnet/config.go): SubnetLen 24, or prefix+2 when the Network is
 * smaller than a /22; SubnetMin is the second subnet, SubnetMax the last one.
 */
export function defaultSubnetLen(network: Cidr): number {
  return network.prefix < 22 ? 24 : network.prefix + 2
}

export function subnetBounds(network: Cidr, subnetLen: number): {min: number; max: number} {
  const step = 2 ** (32 - subnetLen)
  return {min: network.base + step, max: network.base + cidrSize(network) - step}
}
