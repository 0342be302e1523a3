/**
 * Reads a local release tarball's member list with each member's sha256, so kflan can tell
 * whether an installed binary already matches without uploading or extracting anything.
 */
import {createHash} from 'node:crypto'
import {createReadStream, promises as fsp} from 'node:fs'
import path from 'node:path'
import {gunzipSync} from 'node:zlib'

export interface TarMember {
  /** Name as stored (e.g. `etcd-v3.5.17-linux-amd64/etcd`, `./flanneld`). */
  name: string
  size: number
  mode: number
  /** '0' file, '5' dir, '2' symlink, … */
  type: string
  /** sha256 (hex) of a regular file's content. */
  sha256?: string
}

function readString(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start)
  return buf.toString('utf8', start, end === -1 || end > start + len ? start + len : end)
}

function readOctal(buf: Buffer, start: number, len: number): number {
  if (buf[start] & 0x80) {
    // GNU base-256 for large sizes.
    let n = 0
    for (let i = start + 1; i < start + len; i++) n = n * 256 + buf[i]
    return n
  }

  const s = readString(buf, start, len).trim()
  return s ? Number.parseInt(s, 8) : 0
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {}
  let pos = 0
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos)
    if (sp === -1) break
    const len = Number.parseInt(data.toString('utf8', pos, sp), 10)
    if (!len) break
    const rec = data.toString('utf8', sp + 1, pos + len - 1)
    const eq = rec.indexOf('=')
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1)
    pos += len
  }

  return out
}

/** Lists a tar archive (uncompressed bytes), hashing regular files (pure). */
export function listTar(tar: Buffer): TarMember[] {
  const out: TarMember[] = []
  let pos = 0
  let longName: string | undefined
  let pax: Record<string, string> = {}
  while (pos + 512 <= tar.length) {
    const h = tar.subarray(pos, pos + 512)
    if (h.every((b) => b === 0)) break
    const size = readOctal(h, 124, 12)
    const type = String.fromCodePoint(h[156] || 0x30)
    const dataStart = pos + 512
    const data = tar.subarray(dataStart, dataStart + size)
    pos = dataStart + Math.ceil(size / 512) * 512
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0+$/, '')
      continue
    }

    if (type === 'x') {
      pax = parsePax(data)
      continue
    }

    if (type === 'g') continue
    let name = readString(h, 0, 100)
    if (h.toString('latin1', 257, 262) === 'ustar') {
      const prefix = readString(h, 345, 155)
      if (prefix) name = `${prefix}/${name}`
    }

    if (longName !== undefined) name = longName
    if (pax.path) name = pax.path
    longName = undefined
    pax = {}
    const m: TarMember = {name, size, mode: readOctal(h, 100, 8), type: type === '\0' ? '0' : type}
    if (m.type === '0' || m.type === '7') m.sha256 = createHash('sha256').update(data).digest('hex')
    out.push(m)
  }

  return out
}

const cache = new Map<string, {key: string; members: Promise<TarMember[]>}>()

/**
 * Lists a local .tar.gz (or .tar) with each member's sha256, cached per path, size and mtime: in
 * memory (hosts working at once share one parse) and, given `persistDir`, on disk (the next run
 * parses nothing).
 */
export async function listTarball(file: string, persistDir?: string): Promise<TarMember[]> {
  const st = await fsp.stat(file)
  const key = `${file}:${st.size}:${st.mtimeMs}`
  const hit = cache.get(file)
  if (hit && hit.key === key) return hit.members
  const members = readMembers(file, key, persistDir)
  cache.set(file, {key, members})
  members.catch(() => cache.delete(file))
  return members
}

async function readMembers(file: string, key: string, persistDir?: string): Promise<TarMember[]> {
  const disk = persistDir
    ? path.join(persistDir, `tarball-${createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`)
    : undefined
  if (disk) {
    try {
      return JSON.parse(await fsp.readFile(disk, 'utf8')) as TarMember[]
    } catch {
      /* not cached yet */
    }
  }

  let buf = await fsp.readFile(file)
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf)
  const members = listTar(buf)
  if (disk) {
    await fsp.mkdir(path.dirname(disk), {recursive: true, mode: 0o700})
    const tmp = `${disk}.${process.pid}.tmp`
    await fsp.writeFile(tmp, JSON.stringify(members))
    await fsp.rename(tmp, disk)
  }

  return members
}

/**
 * Finds a member by exact name, by name without a leading `./`, or by unique basename (so
 * `etcd` finds `etcd-v3.5.17-linux-amd64/etcd`).
 */
export function findMember(members: TarMember[], want: string): TarMember {
  const files = members.filter((m) => m.type === '0' || m.type === '7')
  const norm = (n: string) => n.replace(/^\.\//, '')
  const exact = files.find((m) => m.name === want) ?? files.find((m) => norm(m.name) === norm(want))
  if (exact) return exact
  const byBase = files.filter((m) => norm(m.name).split('/').pop() === want)
  if (byBase.length === 1) return byBase[0]
  if (byBase.length > 1)
    throw new Error(`tarball member "${want}" is ambiguous: ${byBase.map((m) => m.name).join(', ')}`)
  throw new Error(`tarball has no member "${want}" (it has: ${files.map((m) => m.name).join(', ')})`)
}

/** sha256 and size of a local file, streamed. */
export async function hashLocalFile(file: string): Promise<{sha256: string; size: number}> {
  const h = createHash('sha256')
  let size = 0
  await new Promise<void>((resolve, reject) => {
    createReadStream(file)
      .on('data', (d) => {
        h.update(d)
        size += d.length
      })
      .on('end', resolve)
      .on('error', reject)
  })
  return {sha256: h.digest('hex'), size}
}
