/** Where kflan puts things on a host. One place, so phases, reset and doctor agree. */
import type {Cluster} from '../inventory/model.js'

export const SYSTEMD_DIR = '/etc/systemd/system'
export const DOCKER_DROPIN = `${SYSTEMD_DIR}/docker.service.d/10-kflan-flannel.conf`
export const SYSCTL_FILE = '/etc/sysctl.d/99-kflan.conf'
export const MODULES_FILE = '/etc/modules-load.d/kflan.conf'
/** mk-docker-opts.sh output; never the subnet file (mk-docker-opts truncates its output). */
export const DOCKER_OPTS_FILE = '/run/flannel/docker'
export const KFLAN_VAR = '/var/lib/kflan'

export function etcdPaths(c: Cluster) {
  const d = c.etcd.installDir
  return {
    bin: `${d}/bin`,
    cfg: `${d}/cfg`,
    ssl: `${d}/ssl`,
    conf: `${d}/cfg/etcd.conf`,
    join: `${d}/cfg/etcd-join.conf`,
    unit: `${SYSTEMD_DIR}/etcd.service`,
  }
}

export function flannelPaths(c: Cluster) {
  const d = c.flannel.installDir
  return {bin: `${d}/bin`, ssl: `${d}/ssl`, unit: `${SYSTEMD_DIR}/flanneld.service`}
}

/**
 * Files earlier kflan versions installed that this one removes (the certificates phase): the
 * full-access kflan admin client certificate and key on etcd members. kflan's etcdctl on a member
 * now uses the member's own server certificate (see src/cluster/etcd-auth.ts).
 */
export function retiredFiles(c: Cluster, h: {roles: {etcd: boolean}}): string[] {
  const {ssl} = etcdPaths(c)
  return h.roles.etcd ? [`${ssl}/kflan.pem`, `${ssl}/kflan-key.pem`] : []
}
