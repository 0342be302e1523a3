/**
 * kflan's own known_hosts file (OpenSSH format, kept in the cluster state dir): key fingerprints
 * and types, parsing (hashed, wildcard and negated patterns, `@revoked`), the lines kflan cannot
 * use, and atomic recording. Whether a key is trusted is decided in hostkey-trust.ts.
 */
import {createHash, createHmac, randomBytes} from 'node:crypto'
import {promises as fsp} from 'node:fs'
import path from 'node:path'

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

const MARKERS = new Set(['@cert-authority', '@revoked'])

/** A known_hosts line split into its `@marker` (if any) and fields; undefined for blanks and comments. */
function splitLine(line: string): {marker?: string; fields: string[]} | undefined {
  const raw = line.trim()
  if (raw === '' || raw.startsWith('#')) return undefined
  const fields = raw.split(/\s+/)
  return fields[0].startsWith('@') ? {marker: fields[0], fields: fields.slice(1)} : {fields}
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = []
  for (const [i, line] of text.split('\n').entries()) {
    const l = splitLine(line)
    // An unknown marker: the line is ignored, as OpenSSH does (knownHostsProblems names it).
    if (!l || (l.marker && !MARKERS.has(l.marker)) || l.fields.length < 3) continue
    const [hosts, keyType, key] = l.fields
    out.push({line: i + 1, marker: l.marker as KnownHostEntry['marker'], hosts, keyType, key})
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
  for (const [i, line] of text.split('\n').entries()) {
    const l = splitLine(line)
    if (!l) continue
    if (l.marker && !MARKERS.has(l.marker)) {
      out.push({line: i + 1, why: `unknown marker ${JSON.stringify(l.marker.slice(0, 40))}`})
      continue
    }

    if (l.fields.length < 3) {
      out.push({line: i + 1, why: 'fewer than three fields (hosts, key type, key)'})
      continue
    }

    const [, keyType, key] = l.fields
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key)) {
      out.push({line: i + 1, why: 'the key is not base64'})
      continue
    }

    let blobType: string | undefined
    try {
      blobType = keyTypeOf(Buffer.from(key, 'base64'))
    } catch {
      /* malformed blob: reported below */
    }

    if (blobType !== keyType)
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
