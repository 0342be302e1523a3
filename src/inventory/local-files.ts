/**
 * Local files and directories given as input. Small input files (the inventory, known_hosts) are
 * read bounded and only when regular. Directories kflan writes into (the state directory,
 * `render -o`) are made sure of before anything is written, so a path that is a file, under a
 * file, or on a read-only or full file system is an input error (exit 2) naming the directory,
 * not a stack trace halfway through.
 */
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  rmdirSync,
  statSync,
  unlinkSync,
} from 'node:fs'
import {dirname, join} from 'node:path'

import {InputError, messageOf} from '../errors.js'

/** Reads at most `max` bytes from an open file descriptor. */
export function readFd(fd: number, max: number): Buffer {
  const buf = Buffer.alloc(max)
  let n = 0
  for (let r = 1; r > 0 && n < max; n += r) r = readSync(fd, buf, n, max - n, null)
  return buf.subarray(0, n)
}

/**
 * Reads a small local input file: regular files only (a FIFO or a device would never end or
 * never open), at most `max` bytes. Opened non-blocking, so a FIFO without a writer cannot hang.
 * Throws InputError naming `what`.
 */
export function readBoundedFile(file: string, what: string, max: number, hint: string): Buffer {
  let fd: number | undefined
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
    const st = fstatSync(fd)
    if (!st.isFile()) {
      const kind = st.isDirectory()
        ? 'a directory'
        : st.isFIFO()
          ? 'a FIFO'
          : st.isCharacterDevice() || st.isBlockDevice()
            ? 'a device'
            : st.isSocket()
              ? 'a socket'
              : 'not a regular file'
      throw new InputError(`${what} ${file} is ${kind}: kflan reads only regular files`, {hint})
    }

    if (st.size > max) throw new InputError(`${what} ${file} is ${st.size} bytes; kflan reads at most ${max}`, {hint})
    const buf = readFd(fd, Math.min(st.size, max) + 1)
    if (buf.length > max) throw new InputError(`${what} ${file} grew past ${max} bytes while being read`, {hint})
    return buf
  } catch (error) {
    if (error instanceof InputError) throw error
    const code = (error as NodeJS.ErrnoException).code ?? ''
    throw new InputError(
      `cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : (WHY[code] ?? (code || messageOf(error)))}`,
      {hint},
    )
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

const WHY: Record<string, string> = {
  ENOTDIR: 'a part of the path is a file',
  EEXIST: 'it exists and is not a directory',
  EROFS: 'it is on a read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENAMETOOLONG: 'the path is too long',
  ELOOP: 'too many symbolic links',
}

/** Creates `dir` (mode `mode`) if needed and checks a file can be created in it. Returns `dir`. */
export function ensureWritableDir(dir: string, what: string, hint: string, mode = 0o700): string {
  const fail = (why: string): never => {
    throw new InputError(`${what} ${dir} cannot hold files: ${why}`, {hint})
  }

  let st
  try {
    st = statSync(dir)
  } catch (error) {
    const {code} = error as NodeJS.ErrnoException
    if (code !== 'ENOENT') fail(WHY[code ?? ''] ?? String(code))
  }

  if (st && !st.isDirectory()) fail(st.isFile() ? 'it is a file' : 'it is not a directory')
  if (!st) {
    try {
      mkdirSync(dir, {recursive: true, mode})
    } catch (error) {
      fail(WHY[firstMkdirError(dir) ?? (error as NodeJS.ErrnoException).code ?? ''] ?? messageOf(error))
    }
  }

  try {
    accessSync(dir, constants.W_OK | constants.X_OK)
    // access() passes for root everywhere but a read-only mount; a real create catches the rest.
    const probe = join(dir, `.kflan-write-test-${process.pid}`)
    closeSync(openSync(probe, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600))
    unlinkSync(probe)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? ''
    fail(WHY[code] ?? `${code || (error as Error).message}`)
  }

  return dir
}

/**
 * The real reason a recursive mkdir failed: Node reports ENOENT for a read-only parent, so the
 * first missing component is created alone to get the kernel's own error.
 */
function firstMkdirError(dir: string): string | undefined {
  let p = dir
  while (!existsSync(dirname(p)) && dirname(p) !== p) p = dirname(p)
  try {
    mkdirSync(p)
    rmdirSync(p)
    return undefined
  } catch (error) {
    return (error as NodeJS.ErrnoException).code
  }
}

/** Turns a file system error met while writing under `dir` into an input error (or rethrows). */
export function writeError(error: unknown, what: string, dir: string, hint: string): never {
  const code = (error as NodeJS.ErrnoException)?.code
  if (code && code in WHY) {
    const {path} = error as NodeJS.ErrnoException
    throw new InputError(`cannot write ${path ?? 'a file'} under ${what} ${dir}: ${WHY[code]}`, {hint, cause: error})
  }

  throw error
}
