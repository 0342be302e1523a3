/**
 * Flannel's network arithmetic (mirrors flannel's pkg/subnet/config.go checks): the network, the
 * per-host subnet length and range, enough subnets for the flannel hosts, and no host address inside
 * the pod network.
 */
import type {Diagnostic} from './diagnostics.js'
import type {RawInventory} from './schema.js'

import {cidrContains, cidrSize, defaultSubnetLen, intToIp, ipToInt, isIPv4, parseCidr, subnetBounds} from './net.js'

type Path = Diagnostic['path']

export function checkFlannelNetwork(inv: RawInventory, flannelHosts: number): Diagnostic[] {
  const out: Diagnostic[] = []
  const error = (path: Path, message: string, hint?: string) => out.push({severity: 'error', path, message, hint})
  const net = parseCidr(inv.flannel.network)
  if (typeof net === 'string') {
    error(['flannel', 'network'], net)
  } else {
    const len = inv.flannel.subnetLen ?? defaultSubnetLen(net)
    const lenPath: Path = ['flannel', inv.flannel.subnetLen === undefined ? 'network' : 'subnetLen']
    if (len <= net.prefix) {
      error(
        lenPath,
        `subnetLen /${len} must be longer than the network's /${net.prefix}`,
        `e.g. subnetLen: ${Math.min(net.prefix + 8, 28)}`,
      )
    } else if (len > 28) {
      error(lenPath, `subnetLen /${len} is longer than /28, which flannel rejects`)
    } else {
      const step = 2 ** (32 - len)
      const bounds = subnetBounds(net, len)
      let {min} = bounds
      let {max} = bounds
      for (const key of ['subnetMin', 'subnetMax'] as const) {
        const v = inv.flannel[key]
        if (v === undefined) continue
        if (!isIPv4(v)) {
          error(['flannel', key], `${JSON.stringify(v)} is not an IPv4 address`)
          continue
        }

        const n = ipToInt(v)
        if (!cidrContains(net, n)) error(['flannel', key], `${v} is outside the network ${inv.flannel.network}`)
        else if ((n - net.base) % step !== 0)
          error(
            ['flannel', key],
            `${v} is not on a /${len} boundary`,
            `e.g. ${intToIp(net.base + Math.floor((n - net.base) / step) * step)}`,
          )
        else if (key === 'subnetMin') min = n
        else max = n
      }

      if (min > max) {
        error(['flannel', 'subnetMin'], `subnetMin ${intToIp(min)} is above subnetMax ${intToIp(max)}`, 'swap them')
      } else {
        const count = (max - min) / step + 1
        if (count < 2) {
          error(
            lenPath,
            `only ${count} subnet of /${len} fits between subnetMin and subnetMax`,
            'flannel needs at least 2; use a longer subnetLen or a larger network',
          )
        } else if (count < flannelHosts) {
          error(
            lenPath,
            `${count} subnets of /${len} for ${flannelHosts} flannel hosts`,
            'use a longer subnetLen or a larger network',
          )
        }
      }

      if (cidrSize(net) < 4) error(['flannel', 'network'], 'network is too small')
    }

    for (const [i, h] of inv.hosts.entries()) {
      if (isIPv4(h.address) && cidrContains(net, ipToInt(h.address))) {
        error(
          ['hosts', i, 'address'],
          `host address ${h.address} lies inside the pod network ${inv.flannel.network}`,
          "choose a pod network that does not overlap the hosts' network",
        )
      }
    }
  }

  return out
}
