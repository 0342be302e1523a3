/**
 * The inventory file's shape (YAML). Structural rules live here; rules that relate fields to each
 * other (duplicates, CIDR arithmetic, version compatibility) live in validate.ts.
 * docs/inventory.md documents every field; keep the two in step.
 */
import semver from 'semver'
import {z} from 'zod'

const name = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label: lower-case letters, digits and "-"')

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')

const port = z.number().int().min(1).max(65_535)

const fingerprint = z
  .string()
  .regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'must be an SSH fingerprint as `ssh-keygen -lf` prints it (SHA256:…)')

/** A sha256 digest as `sha256sum` prints it (upper case accepted, kept lower case). */
const sha256 = z
  .string()
  .regex(/^[A-Fa-f0-9]{64}$/, 'must be the 64 hex digits `sha256sum` prints')
  .transform((s) => s.toLowerCase())

/**
 * A path on the hosts. It is written into unit files, environment files and shell commands, so it
 * may only hold characters none of those give a meaning to (docs/inventory.md, "Field rules").
 */
const absPath = z
  .string()
  .max(200, 'must be at most 200 characters')
  .regex(
    /^(\/[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+$/,
    String.raw`must be an absolute path of letters, digits and . _ @ + - (no spaces, quotes, "$", "%", "\", "//", a trailing "/", or a part starting with ".")`,
  )

/** A local file (tarball, identity file): any characters but control characters (newline, NUL, ...). */
const localPath = z
  .string()
  .min(1)
  .max(4096)
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point of this pattern
  .regex(/^[^\u0000-\u001F\u007F]*$/, 'must not contain control characters (newline, tab, NUL)')

/** A login name (POSIX portable user name, as useradd accepts it). */
const userName = z
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/,
    'must be a user name: letters, digits, "_", "." and "-", starting with a letter or "_" (at most 32)',
  )

/** A Linux network interface name (IFNAMSIZ: at most 15 characters, no "/" or whitespace). */
export const interfaceName = z
  .string()
  .regex(/^[A-Za-z0-9_.:@-]{1,15}$/, 'must be an interface name: at most 15 letters, digits or _ . : @ -')
  .refine((s) => s !== '.' && s !== '..', 'must not be "." or ".."')

/** A semantic version as users write it (`v3.5.17`, `0.26.1`, `3.6.0-rc.1`), kept without the `v`. */
const version = z
  .string()
  .refine(
    (v) => semver.valid(v.trim().replace(/^v/, '')) !== null,
    'must be a release version like 3.4.23 (semver: a `v` prefix and -rc.1 style pre-releases are fine)',
  )
  .transform((v) => v.trim().replace(/^v/, ''))

/** Bastion (jump host) used to reach the hosts. */
const bastion = z
  .object({
    /** IP address or DNS name (checked in validate.ts). */
    address: z.string(),
    port: port.default(22),
    user: userName.optional(),
    identityFile: localPath.optional(),
    passwordEnv: envName.optional(),
    hostKey: fingerprint.optional(),
  })
  .strict()

/** SSH settings; cluster-wide under `ssh:`, per host under `hosts[].ssh:`. */
const sshFields = {
  user: userName.optional(),
  port: port.optional(),
  identityFile: localPath.optional(),
  /** Environment variable holding the SSH password (never the password itself). */
  passwordEnv: envName.optional(),
  /** Environment variable holding the sudo password, for a non-root user. */
  sudoPasswordEnv: envName.optional(),
  /** Use the ssh-agent at $SSH_AUTH_SOCK. */
  agent: z.boolean().optional(),
  bastion: bastion.optional(),
}

const ssh = z.object(sshFields).strict()

const host = z
  .object({
    name,
    address: z.string(),
    /** Interface flanneld uses (--iface); default: the one that carries `address`. */
    interface: interfaceName.optional(),
    /** Expected SSH host key fingerprint; lets kflan trust a host it has never seen. */
    hostKey: fingerprint.optional(),
    ssh: ssh.optional(),
  })
  .strict()

const roles = z
  .object({
    masters: z.array(z.string()).default([]),
    nodes: z.array(z.string()).default([]),
    /** Hosts running an etcd member; default: the masters. */
    etcd: z.array(z.string()).optional(),
    /** Hosts running flanneld (and docker); default: the nodes. */
    flannel: z.array(z.string()).optional(),
  })
  .strict()

const etcd = z
  .object({
    version,
    /** Release tarball: a local path (relative to the inventory file) or an http(s):// URL. */
    tarball: localPath,
    /** sha256 of the tarball; required for a URL, checked for a path when given. */
    sha256: sha256.optional(),
    dataDir: absPath.default('/var/lib/etcd/default.etcd'),
    installDir: absPath.default('/opt/etcd'),
    clientPort: port.default(2379),
    peerPort: port.default(2380),
    /** --initial-cluster-token, written into the etcd environment file. */
    token: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1 to 64 letters, digits, ".", "_" or "-"')
      .default('etcd-cluster'),
    /** Extra subject alternative names for the server certificates (IPs or DNS names). */
    extraSans: z.array(z.string()).default([]),
  })
  .strict()

const vxlan = z
  .object({
    type: z.literal('vxlan'),
    vni: z.number().int().min(1).max(16_777_215).default(1),
    port: port.default(8472),
    directRouting: z.boolean().default(false),
    mtu: z.number().int().min(576).max(9000).optional(),
  })
  .strict()

const hostGw = z.object({type: z.literal('host-gw')}).strict()

const udp = z
  .object({
    type: z.literal('udp'),
    port: port.default(8285),
  })
  .strict()

export const backendTypes = ['vxlan', 'host-gw', 'udp'] as const

const flannel = z
  .object({
    version,
    tarball: localPath,
    sha256: sha256.optional(),
    installDir: absPath.default('/opt/flannel'),
    /** The pod network (flannel's "Network"). */
    network: z.string(),
    subnetLen: z.number().int().min(1).max(30).optional(),
    subnetMin: z.string().optional(),
    subnetMax: z.string().optional(),
    backend: z.discriminatedUnion('type', [vxlan, hostGw, udp]).default({type: 'vxlan'}),
    prefix: z
      .string()
      .regex(
        /^(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$/,
        'must be an etcd key prefix like /coreos.com/network: "/"-separated letters, digits, ".", "_" and "-", no trailing "/"',
      )
      .default('/coreos.com/network'),
    ipMasq: z.boolean().default(true),
    /** Default interface for flanneld (--iface); a host's own `interface` wins. */
    interface: interfaceName.optional(),
    /** flanneld's --healthz-port (flannel's own default is 0, off); kflan turns it on for doctor. 0 = off. */
    healthzPort: z.number().int().min(0).max(65_535).default(8471),
    subnetFile: absPath.default('/run/flannel/subnet.env'),
  })
  .strict()

const docker = z
  .object({
    /**
     * Make docker.service start with $DOCKER_NETWORK_OPTIONS from flannel. Docker itself must be
     * installed (a preflight error says so): kflan does not install packages.
     */
    enabled: z.boolean().default(true),
  })
  .strict()

const pki = z
  .object({
    keyAlgorithm: z.enum(['ecdsa', 'rsa']).default('ecdsa'),
    validityDays: z.number().int().min(1).max(36_500).default(3650),
  })
  .strict()

const preflight = z
  .object({
    /** firewalld: `disable` it (the guides' way) or `open` the etcd and backend ports. */
    firewall: z.enum(['disable', 'open']).default('disable'),
    /** Maximum clock skew between hosts before a warning, in seconds. */
    maxClockSkew: z.number().positive().default(1),
  })
  .strict()

/** `90s`, `5m`, `1m30s`: minutes and/or seconds, each with its unit. */
const DURATION = /^(?:(\d{1,4})m)?(?:(\d{1,5})s)?$/

/** A duration as written in the inventory, in milliseconds; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim())
  if (!m || (m[1] === undefined && m[2] === undefined)) return undefined
  return (Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 1000
}

const MAX_TIMEOUT_S = 3600

/** A timeout: a duration with its unit from 1s to 1h (a bare number is refused: seconds or minutes?). */
const timeout = (fallback: string) =>
  z
    .unknown()
    .default(fallback)
    .transform((v, ctx) => {
      const ms = typeof v === 'string' ? parseDuration(v) : undefined
      if (ms === undefined || ms < 1000 || ms > MAX_TIMEOUT_S * 1000) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a duration from 1s to 60m with its unit, like 90s, 5m or 1m30s (got ${JSON.stringify(v)})`,
        })
        return z.NEVER
      }

      return ms
    })

/**
 * How long kflan waits on the hosts (docs/inventory.md, "Timeouts"). The defaults suit ordinary
 * machines; slow ones (software-emulated VMs, an overloaded CI runner) need more.
 */
const timeouts = z
  .object({
    /** etcd: `systemctl restart etcd`, and each wait for a healthy cluster after a start, join or restart. */
    etcdStart: timeout('60s'),
    /** flanneld: from its start until it wrote its subnet file. */
    flannelStart: timeout('45s'),
    /** docker: `systemctl restart docker` (init, join node, reset). */
    dockerStart: timeout('120s'),
    /** doctor: the checks script on one host (and the etcd follow-up round). */
    doctorHost: timeout('20s'),
    /** etcdctl: one request kflan makes of etcd (connecting takes at most 2/5 of it); doctor's take 2/5. */
    etcdRequest: timeout('5s'),
  })
  .strict()

export const inventorySchema = z
  .object({
    cluster: name,
    ssh: ssh.default({}),
    hosts: z.array(host).min(1, 'at least one host is required'),
    roles,
    etcd,
    flannel,
    docker: docker.default({}),
    pki: pki.default({}),
    preflight: preflight.default({}),
    timeouts: timeouts.default({}),
  })
  .strict()

export type RawInventory = z.output<typeof inventorySchema>
export type SshSettings = z.output<typeof ssh>
export type BackendSettings = RawInventory['flannel']['backend']
