/** Where kflan puts things on a host. One place, so phases, reset and doctor agree. */
import type {Cluster} from '../inventory/model.js'

export const SYSTEMD_DIR = '/etc/systemd/system'
export const DOCKER_DROPIN = `${SYSTEMD_DIR}/docker.service.d/10-kflan-flannel.conf`
export const SYSCTL_FILE = '/etc/sysctl.d/99-kflan.conf'
export const MODULES_FILE = '/etc/modules-load.d/kflan.conf'
/** mk-docker-opts.sh output; never the subnet file (mk-docker-opts truncates its output). */
export const DOCKER_OPTS_FILE = '/run/flannel/docker'
export const KFLAN_VAR = '/var/lib/kflan'

/**
 * An etcd member's directories and files. The certificates keep cfssl's names (`server.pem`,
 * `server-key.pem`, ...) whatever the member is called; the local PKI names them per member
 * (src/pki/store.ts, src/pki/plan.ts `memberCertNames`).
 */
export function etcdPaths(c: Cluster) {
  const d = c.etcd.installDir
  const ssl = `${d}/ssl`
  return {
    bin: `${d}/bin`,
    cfg: `${d}/cfg`,
    ssl,
    conf: `${d}/cfg/etcd.conf`,
    join: `${d}/cfg/etcd-join.conf`,
    unit: `${SYSTEMD_DIR}/etcd.service`,
    ca: `${ssl}/ca.pem`,
    /** Client-facing certificate; also what kflan's etcdctl on the member authenticates with. */
    serverCert: `${ssl}/server.pem`,
    serverKey: `${ssl}/server-key.pem`,
    peerCert: `${ssl}/peer.pem`,
    peerKey: `${ssl}/peer-key.pem`,
    /** Retired: the kflan admin client certificate earlier versions installed (see `retiredFiles`). */
    retiredAdminCert: `${ssl}/kflan.pem`,
    retiredAdminKey: `${ssl}/kflan-key.pem`,
  }
}

/** A flannel host's directories and files; flanneld's etcd client certificate and the CA. */
export function flannelPaths(c: Cluster) {
  const d = c.flannel.installDir
  const ssl = `${d}/ssl`
  return {
    bin: `${d}/bin`,
    ssl,
    unit: `${SYSTEMD_DIR}/flanneld.service`,
    ca: `${ssl}/ca.pem`,
    cert: `${ssl}/flanneld.pem`,
    key: `${ssl}/flanneld-key.pem`,
  }
}

/** The certificates and private keys kflan installs on a host, by its roles. */
export function certificateFiles(
  c: Cluster,
  h: {roles: {etcd: boolean; flannel: boolean}},
): {certs: string[]; keys: string[]} {
  const certs: string[] = []
  const keys: string[] = []
  if (h.roles.etcd) {
    const p = etcdPaths(c)
    certs.push(p.ca, p.serverCert, p.peerCert)
    keys.push(p.serverKey, p.peerKey)
  }

  if (h.roles.flannel) {
    const p = flannelPaths(c)
    certs.push(p.ca, p.cert)
    keys.push(p.key)
  }

  return {certs, keys}
}

/**
 * Files earlier kflan versions installed that this one removes (the certificates phase): the
 * full-access kflan admin client certificate and key on etcd members. kflan's etcdctl on a member
 * now uses the member's own server certificate (see src/cluster/etcd-auth.ts).
 */
export function retiredFiles(c: Cluster, h: {roles: {etcd: boolean}}): string[] {
  const p = etcdPaths(c)
  return h.roles.etcd ? [p.retiredAdminCert, p.retiredAdminKey] : []
}
