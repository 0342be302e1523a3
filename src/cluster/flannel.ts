/**
 * flannel facts kflan relies on, by version and backend (pure; see shared/flannel-contract.md):
 * the vxlan device and its MTU, the ports a host must have open, the health endpoints.
 */
import {type Cluster, compareVersions, type Host} from '../inventory/model.js'

/** The backend's `MTU` field is read from flannel 0.21.3 on; older versions ignore it. */
export const BACKEND_MTU_SINCE = '0.21.3'
/** flanneld serves /readyz from 0.28.9 on (/healthz whenever --healthz-port > 0). */
export const READYZ_SINCE = '0.28.9'

export function backendMtuSupported(flannelVersion: string): boolean {
  return compareVersions(flannelVersion, BACKEND_MTU_SINCE) >= 0
}

export function readyzSupported(flannelVersion: string): boolean {
  return compareVersions(flannelVersion, READYZ_SINCE) >= 0
}

/** `flannel.<VNI>` for the vxlan backend. */
export function vxlanDevice(c: Cluster): string | undefined {
  const b = c.flannel.backend
  return b.type === 'vxlan' ? `flannel.${b.vni}` : undefined
}

/**
 * The MTU flanneld gives a vxlan device it creates: (backend MTU, else the interface's) − 50.
 * flanneld keeps an existing device as it is, MTU included, so a change only takes effect once
 * the device is deleted. undefined when it cannot be known (not vxlan, interface MTU unknown).
 */
export function expectedVxlanMtu(c: Cluster, ifaceMtu: number | undefined): number | undefined {
  const b = c.flannel.backend
  if (b.type !== 'vxlan') return undefined
  const base = b.mtu !== undefined && backendMtuSupported(c.flannel.version) ? b.mtu : ifaceMtu
  return base === undefined ? undefined : base - 50
}

/** Ports a host needs open (`2379/tcp`): etcd's on members; the backend's and healthz on flannel hosts. */
export function hostPorts(c: Cluster, h: Host): string[] {
  const ports: string[] = []
  if (h.roles.etcd) ports.push(`${c.etcd.clientPort}/tcp`, `${c.etcd.peerPort}/tcp`)
  if (h.roles.flannel) {
    const b = c.flannel.backend
    if (b.type !== 'host-gw') ports.push(`${b.port}/udp`)
    if (c.flannel.healthzPort > 0) ports.push(`${c.flannel.healthzPort}/tcp`)
  }

  return ports
}

/** The health URLs of flanneld on a host, asked on loopback (kflan leaves --healthz-ip at 0.0.0.0). */
export function healthUrls(c: Cluster): {healthz?: string; readyz?: string} {
  const port = c.flannel.healthzPort
  if (port <= 0) return {}
  const base = `http://127.0.0.1:${port}`
  return {healthz: `${base}/healthz`, readyz: readyzSupported(c.flannel.version) ? `${base}/readyz` : undefined}
}
