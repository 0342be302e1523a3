import ipaddr from 'ipaddr.js'
/**
 * IPv4 address and CIDR arithmetic (pure). Parsing is ipaddr.js's; the subnet arithmetic flannel
 * does (subnet length, SubnetMin/Max, containment) is on 32-bit integers, as flannel's own ip4 type.
 * IPv6 is recognised for SANs, not for flannel networks.
 */
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
  const [a, b, c, d] = ipaddr.IPv4.parse(ip).octets
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0
}

export function intToIp(n: number): string {
  return ipaddr.fromByteArray([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]).toString()
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xff_ff_ff_ff << (32 - prefix)) >>> 0
}

/** Parses `a.b.c.d/n`; returns an error message or the CIDR (host bits must be zero). */
export function parseCidr(s: string): Cidr | string {
  // No trimming: the value is rendered as it is, so a newline around it must be refused, not hidden.
  const [addr, len, extra] = s.split('/')
  // ipaddr.js also reads `10.1/16` and hex forms; a network in an inventory is four decimal parts.
  if (extra !== undefined || len === undefined || !/^\d{1,2}$/.test(len) || !ipaddr.IPv4.isValidFourPartDecimal(addr))
    return `${JSON.stringify(s)} is not an IPv4 CIDR like 10.244.0.0/16`
  const prefix = Number(len)
  if (prefix > 32) return `${JSON.stringify(s)}: prefix length must be 0..32`
  const network = ipaddr.IPv4.networkAddressFromCIDR(s).toString()
  if (network !== addr) return `${JSON.stringify(s)} has host bits set; did you mean ${network}/${prefix}?`
  return {base: ipToInt(network), prefix}
}

export function cidrToString(c: Cidr): string {
  return `${intToIp(c.base)}/${c.prefix}`
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix)
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return (ip & mask(c.prefix)) >>> 0 === c.base
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
