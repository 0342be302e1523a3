/**
 * Host key verification against kflan's own known_hosts file (OpenSSH format, kept in the
 * cluster state dir). The decision is a pure function; only `recordHostKey` touches the disk.
 *
 * Rules: a key recorded for the host → ok; a host kflan has never seen → refused unless its
 * fingerprint equals the inventory's `hostKey` or `acceptNew` is set (then recorded); a key that
 * differs from the recorded one → refused, unless the inventory pins exactly the new key.
 *
 * Why the pin wins over the record: the pin is what the operator wrote down after checking the
 * host (or what a lab or VM builder wrote when it made the host), the record is only what kflan
 * saw first. A re-installed host with a re-pinned inventory is the normal case (`lab.sh down` +
 * `up`, a rebuilt VM); the old lines are then replaced and the run says so. A pin that does not
 * match, or no pin, still refuses a changed key: `acceptNew` never overrides a record.
 */
import {createHash, createHmac, randomBytes} from 'node:crypto'
import {promises as fsp} from 'node:fs'
import path from 'node:path'

import {HostKeyError, type HostKeyProblem} from './errors.js'

export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number
  marker?: '@revoked' | '@cert-authority'
  /** Host patterns as written (comma-separated, possibly hashed `|1|salt|hash`). */
  hosts: string
  keyType: string
  /** Base64 of the public key blob. */
  key: string
}

/** `SHA256:` + unpadded base64 of the key blob's SHA-256, exactly as `ssh-keygen -lf` prints it. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`
}

/** Normalizes a user-written fingerprint: trims, accepts missing `SHA256:` prefix or `=` padding. */
export function normalizeFingerprint(fp: string): string {
  let s = fp.trim()
  if (!/^SHA256:/i.test(s)) s = `SHA256:${s}`
  return `SHA256:${s.slice(7).replace(/=+$/, '')}`
}

/** The key type name (`ssh-ed25519`, `ssh-rsa`, …) stored at the start of an SSH public key blob. */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) throw new Error('public key blob too short')
  const len = keyBlob.readUInt32BE(0)
  if (len <= 0 || len > 64 || 4 + len > keyBlob.length) throw new Error('malformed public key blob')
  return keyBlob.subarray(4, 4 + len).toString('latin1')
}

/** How OpenSSH names a host in known_hosts: `addr` on port 22, `[addr]:port` otherwise. */
export function knownHostId(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = []
  const lines = text.split('\n')
  for (const [i, line] of lines.entries()) {
    const raw = line.trim()
    if (raw === '' || raw.startsWith('#')) continue
    const parts = raw.split(/\s+/)
    let marker: KnownHostEntry['marker']
    if (parts[0] === '@revoked' || parts[0] === '@cert-authority') marker = parts.shift() as KnownHostEntry['marker']
    else if (parts[0].startsWith('@')) continue // unknown marker: ignore the line, as OpenSSH does
    if (parts.length < 3) continue
    const [hosts, keyType, key] = parts
    out.push({line: i + 1, marker, hosts, keyType, key})
  }

  return out
}

function globToRegExp(glob: string): RegExp {
  const re = glob
    .replaceAll(/[.+^${}()|[\]\\]/g, String.raw`\$&`)
    .replaceAll('*', '.*')
    .replaceAll('?', '.')
  return new RegExp(`^${re}$`, 'i')
}

/** Whether a known_hosts host field matches `hostId` (plain, wildcard, negated or hashed patterns). */
export function hostsFieldMatches(hostsField: string, hostId: string): boolean {
  if (hostsField.startsWith('|1|')) {
    // eslint-disable-next-line unicorn/no-unreadable-array-destructuring -- the fields of |1|salt|hash, by position
    const [, , salt, hash] = hostsField.split('|')
    if (!salt || !hash) return false
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(hostId).digest('base64')
    return mac === hash
  }

  let matched = false
  for (const pattern of hostsField.split(',')) {
    if (pattern.startsWith('!')) {
      if (globToRegExp(pattern.slice(1)).test(hostId)) return false
    } else if (globToRegExp(pattern).test(hostId)) {
      matched = true
    }
  }

  return matched
}

export function entriesForHost(entries: KnownHostEntry[], hostId: string): KnownHostEntry[] {
  return entries.filter((e) => hostsFieldMatches(e.hosts, hostId))
}

const ALGOS_FOR_TYPE: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  'ssh-dss': ['ssh-dss'],
}

/**
 * Host key algorithms to offer for a host already in known_hosts, so the server presents a key of
 * a type we have recorded (as OpenSSH does). Undefined: no preference (host unknown).
 */
export function hostKeyAlgorithmsFor(entries: KnownHostEntry[], hostId: string): string[] | undefined {
  const types = entriesForHost(entries, hostId)
    .filter((e) => !e.marker)
    .map((e) => e.keyType)
  const algos: string[] = []
  for (const t of types) for (const a of ALGOS_FOR_TYPE[t] ?? []) if (!algos.includes(a)) algos.push(a)
  return algos.length > 0 ? algos : undefined
}

export type HostKeyDecision =
  | {ok: true; action: 'known' | 'pinned' | 'accept-new'; fingerprint: string; keyType: string}
  | {ok: true; action: 'repinned'; fingerprint: string; keyType: string; replaces: number[]}
  | {ok: false; problem: HostKeyProblem; fingerprint: string; keyType: string; lines: number[]}

export interface HostKeyInput {
  entries: KnownHostEntry[]
  hostId: string
  /** Raw public key blob the server presented. */
  key: Buffer
  /** Fingerprint from the inventory (`hostKey:`), if any. */
  pin?: string
  acceptNew?: boolean
}

/**
 * The verification rules, pure. `pinned` and `accept-new` mean: trust it and record it; `repinned`:
 * trust it, and record it in place of the lines in `replaces`.
 */
export function decideHostKey(input: HostKeyInput): HostKeyDecision {
  const fingerprint = fingerprintSha256(input.key)
  const keyType = keyTypeOf(input.key)
  const b64 = input.key.toString('base64')
  const mine = entriesForHost(input.entries, input.hostId)
  const revoked = input.entries.filter(
    (e) => e.marker === '@revoked' && e.key === b64 && hostsFieldMatches(e.hosts, input.hostId),
  )
  if (revoked.length > 0)
    return {ok: false, problem: 'revoked', fingerprint, keyType, lines: revoked.map((e) => e.line)}
  const plain = mine.filter((e) => !e.marker)
  const pin = input.pin ? normalizeFingerprint(input.pin) : undefined
  if (plain.length > 0) {
    if (!plain.some((e) => e.keyType === keyType && e.key === b64)) {
      // Only lines that name this host alone can be replaced; a shared or wildcard line is the user's.
      const own = plain.every((e) => e.hosts.startsWith('|1|') || e.hosts.toLowerCase() === input.hostId.toLowerCase())
      if (pin === fingerprint && own)
        return {ok: true, action: 'repinned', fingerprint, keyType, replaces: plain.map((e) => e.line)}
      return {ok: false, problem: 'changed', fingerprint, keyType, lines: plain.map((e) => e.line)}
    }

    if (pin && pin !== fingerprint) return {ok: false, problem: 'pin-mismatch', fingerprint, keyType, lines: []}
    return {ok: true, action: 'known', fingerprint, keyType}
  }

  if (pin) {
    if (pin === fingerprint) return {ok: true, action: 'pinned', fingerprint, keyType}
    return {ok: false, problem: 'pin-mismatch', fingerprint, keyType, lines: []}
  }

  if (input.acceptNew) return {ok: true, action: 'accept-new', fingerprint, keyType}
  return {ok: false, problem: 'unknown', fingerprint, keyType, lines: []}
}

/** Turns a refusal into the error the user sees, with what to check. */
export function hostKeyError(opts: {
  host: string
  hostId: string
  decision: Extract<HostKeyDecision, {ok: false}>
  knownHostsPath: string
  pin?: string
}): HostKeyError {
  const {host, hostId, decision: d, knownHostsPath: p} = opts
  const lines = d.lines.join(', ')
  switch (d.problem) {
    case 'changed': {
      return new HostKeyError({
        host,
        problem: 'changed',
        fingerprint: d.fingerprint,
        knownHostsPath: p,
        message: `HOST KEY CHANGED for ${hostId}: it now presents ${d.keyType} ${d.fingerprint}, which differs from the key recorded in ${p} (line ${lines})`,
        hint:
          `Someone could be intercepting the connection (man-in-the-middle), or the host was reinstalled or its SSH keys regenerated. ` +
          `Check the key on the host's console (\`ssh-keygen -lf /etc/ssh/ssh_host_${keyFileSuffix(d.keyType)}_key.pub\`). ` +
          `Only if the change is expected, remove line ${lines} from ${p} (or \`ssh-keygen -R '${hostId}' -f ${p}\`) and run again.`,
      })
    }

    case 'pin-mismatch': {
      return new HostKeyError({
        host,
        problem: 'pin-mismatch',
        fingerprint: d.fingerprint,
        knownHostsPath: p,
        message: `host key of ${hostId} is ${d.keyType} ${d.fingerprint}, but the inventory expects ${opts.pin ? normalizeFingerprint(opts.pin) : '?'}`,
        hint:
          `Either the inventory's hostKey is wrong or someone is intercepting the connection. Read the real fingerprint on the host ` +
          `(\`ssh-keygen -lf /etc/ssh/ssh_host_${keyFileSuffix(d.keyType)}_key.pub\`) and fix the inventory.`,
      })
    }

    case 'revoked': {
      return new HostKeyError({
        host,
        problem: 'revoked',
        fingerprint: d.fingerprint,
        knownHostsPath: p,
        message: `host key ${d.fingerprint} of ${hostId} is marked @revoked in ${p} (line ${lines})`,
        hint: `The host presents a key that was explicitly revoked. Do not connect until the host's keys are regenerated and verified.`,
      })
    }

    default: {
      return new HostKeyError({
        host,
        problem: 'unknown',
        fingerprint: d.fingerprint,
        knownHostsPath: p,
        message: `unknown host key for ${hostId}: ${d.keyType} ${d.fingerprint} (not in ${p})`,
        hint:
          `Verify the fingerprint on the host (\`ssh-keygen -lf /etc/ssh/ssh_host_${keyFileSuffix(d.keyType)}_key.pub\`) and put it in the inventory ` +
          `as \`hostKey: ${d.fingerprint}\`, or run with --accept-new-host-keys to trust and record new host keys on first use.`,
      })
    }
  }
}

function keyFileSuffix(keyType: string): string {
  if (keyType.startsWith('ecdsa')) return 'ecdsa'
  if (keyType === 'ssh-rsa') return 'rsa'
  if (keyType === 'ssh-dss') return 'dsa'
  return 'ed25519'
}

/** The known_hosts line kflan writes for a host. */
export function knownHostsLine(hostId: string, key: Buffer, comment?: string): string {
  return `${hostId} ${keyTypeOf(key)} ${key.toString('base64')}${comment ? ` ${comment.replaceAll(/\s+/g, '_')}` : ''}`
}

/**
 * Lines of a known_hosts file that kflan (and OpenSSH) cannot use: an unknown marker, missing
 * fields, a key that is not base64 or not of the type the line names (pure). Such lines are
 * ignored when keys are looked up; the caller warns about them, naming the line.
 */
export function knownHostsProblems(text: string): {line: number; why: string}[] {
  const out: {line: number; why: string}[] = []
  for (const [i, l] of text.split('\n').entries()) {
    const raw = l.trim()
    if (raw === '' || raw.startsWith('#')) continue
    const parts = raw.split(/\s+/)
    if (parts[0].startsWith('@') && parts[0] !== '@revoked' && parts[0] !== '@cert-authority') {
      out.push({line: i + 1, why: `unknown marker ${JSON.stringify(parts[0].slice(0, 40))}`})
      continue
    }

    if (parts[0].startsWith('@')) parts.shift()
    if (parts.length < 3) {
      out.push({line: i + 1, why: 'fewer than three fields (hosts, key type, key)'})
      continue
    }

    const [, keyType, key] = parts
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key)) {
      out.push({line: i + 1, why: 'the key is not base64'})
      continue
    }

    const blob = Buffer.from(key, 'base64')
    const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1
    if (len < 0 || blob.subarray(4, 4 + len).toString('latin1') !== keyType)
      out.push({line: i + 1, why: `the key is not a ${JSON.stringify(keyType.slice(0, 40))} key`})
  }

  return out
}

export async function readKnownHosts(file: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await fsp.readFile(file, 'utf8'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
}

const locks = new Map<string, Promise<unknown>>()

/** Serializes read-modify-write of one file within this process (parallel connects record keys). */
async function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(key) ?? Promise.resolve()
  const next = prev.then(fn, fn)
  locks.set(
    key,
    next.catch(() => undefined),
  )
  return next
}

/**
 * Appends a host key to known_hosts atomically (temp file in the same dir, fsync, rename; mode
 * 0600). A line that is already there is not added twice. `replaces`: line numbers (as read by the
 * decision) of this host's old keys, dropped in the same write.
 */
export async function recordHostKey(
  file: string,
  hostId: string,
  key: Buffer,
  comment?: string,
  replaces: number[] = [],
): Promise<void> {
  const abs = path.resolve(file)
  await withLock(abs, async () => {
    await fsp.mkdir(path.dirname(abs), {recursive: true, mode: 0o700})
    let text = ''
    try {
      text = await fsp.readFile(abs, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }

    const b64 = key.toString('base64')
    if (replaces.length > 0) {
      // Drop only lines that still hold a key of this host (the file may have changed since it was read).
      const drop = new Set(
        parseKnownHosts(text)
          .filter((e) => replaces.includes(e.line) && !e.marker && hostsFieldMatches(e.hosts, hostId))
          .map((e) => e.line),
      )
      text = text
        .split('\n')
        .filter((_, i) => !drop.has(i + 1))
        .join('\n')
    }

    if (parseKnownHosts(text).some((e) => !e.marker && e.key === b64 && hostsFieldMatches(e.hosts, hostId))) return
    if (text !== '' && !text.endsWith('\n')) text += '\n'
    text += `${knownHostsLine(hostId, key, comment)}\n`
    const tmp = `${abs}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`
    const fh = await fsp.open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(text)
      await fh.sync()
    } finally {
      await fh.close()
    }

    await fsp.rename(tmp, abs)
  })
}
