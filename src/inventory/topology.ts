/** Which host runs what: the resolved roles, as text for people and as data for --json. */
import {type Cluster, etcdEndpoints} from './model.js'

export function describeTopology(c: Cluster): {text: string; json: object} {
  const rows = c.hosts.map((h) => ({
    host: h.name,
    address: h.address,
    roles: [h.roles.master && 'master', h.roles.node && 'node'].filter(Boolean).join(',') || '-',
    runs:
      [h.roles.etcd && 'etcd', h.roles.flannel && 'flanneld', h.roles.flannel && c.docker.enabled && 'docker']
        .filter(Boolean)
        .join(' ') || '-',
    iface: h.interface ?? '(by address)',
  }))
  const head = {host: 'HOST', address: 'ADDRESS', roles: 'ROLES', runs: 'RUNS', iface: 'FLANNEL IFACE'}
  const cols = Object.keys(head) as (keyof typeof head)[]
  const width = Object.fromEntries(cols.map((k) => [k, Math.max(head[k].length, ...rows.map((r) => r[k].length))]))
  const line = (r: typeof head) =>
    cols
      .map((k) => r[k].padEnd(width[k]))
      .join('  ')
      .trimEnd()
  const b = c.flannel.backend
  const text = [
    `cluster ${c.name}: ${c.hosts.length} hosts`,
    '',
    line(head),
    ...rows.map(line),
    '',
    `etcd ${c.etcd.version}: ${etcdEndpoints(c)}${c.etcd.enableV2 ? ' (v2 API enabled for flannel)' : ''}`,
    `flannel ${c.flannel.version}: network ${c.flannel.network}, /${c.flannel.subnetLen} per host (${c.flannel.subnetMin} .. ${c.flannel.subnetMax}), backend ${b.type}${b.type === 'vxlan' ? ` VNI ${b.vni} port ${b.port}` : ''}, config at ${c.flannel.prefix}/config via etcd ${c.flannel.etcdApi} API`,
    `docker: ${c.docker.enabled ? 'started with $DOCKER_NETWORK_OPTIONS from flannel' : 'not managed'}`,
  ].join('\n')
  return {
    text,
    json: {
      cluster: c.name,
      hosts: rows,
      etcd: {version: c.etcd.version, endpoints: etcdEndpoints(c).split(','), enableV2: c.etcd.enableV2},
      flannel: c.flannel,
      docker: c.docker,
    },
  }
}
