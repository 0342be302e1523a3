/**
 * The on-disk store: <stateDir>/pki/ (0700) with cfssl-style names,
 * `<name>.pem` (0644) and `<name>-key.pem` (0600), each written atomically
 * (temporary file created with its final mode, fsync, rename).
 */
import {randomBytes} from 'node:crypto'
import {constants} from 'node:fs'
import {chmod, mkdir, open, readdir, readFile, rename, stat, unlink} from 'node:fs/promises'
import {join} from 'node:path'

export const PKI_SUBDIR = 'pki'
export const KEY_MODE = 0o600
export const CERT_MODE = 0o644
export const DIR_MODE = 0o700

export function pkiDir(stateDir: string): string {
  return join(stateDir, PKI_SUBDIR)
}

/** File names (in pki/) of one certificate and its key: `<name>.pem`, `<name>-key.pem`. */
export function certificateFileNames(name: string): {certFile: string; keyFile: string} {
  return {certFile: `${name}.pem`, keyFile: `${name}-key.pem`}
}

/** Paths of one certificate and its key: `<dir>/<name>.pem`, `<dir>/<name>-key.pem`. */
export function certificatePaths(stateDir: string, name: string): {certFile: string; keyFile: string} {
  const dir = pkiDir(stateDir)
  const f = certificateFileNames(name)
  return {certFile: join(dir, f.certFile), keyFile: join(dir, f.keyFile)}
}

/** Create <stateDir>/pki with mode 0700 (tightening it if it exists wider). Returns true if its mode was tightened. */
export async function ensurePkiDir(stateDir: string): Promise<boolean> {
  const dir = pkiDir(stateDir)
  await mkdir(dir, {recursive: true, mode: DIR_MODE})
  const st = await stat(dir)
  if ((st.mode & 0o777) !== DIR_MODE) {
    await chmod(dir, DIR_MODE)
    return true
  }

  return false
}

/** File content, or undefined when the file does not exist. */
export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** Write `data` to `file` atomically, the temporary file created with `mode` (never readable by others in between). */
export async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } catch (error) {
    await fh.close()
    await unlink(tmp).catch(() => {})
    throw error
  }

  await fh.close()
  try {
    await rename(tmp, file)
  } catch (error) {
    await unlink(tmp).catch(() => {})
    throw error
  }
}

/** Write a key (0600) then its certificate (0644). */
export async function writeCertificatePair(
  stateDir: string,
  name: string,
  certPem: string,
  keyPem: string,
): Promise<void> {
  const {certFile, keyFile} = certificatePaths(stateDir, name)
  await writeFileAtomic(keyFile, keyPem, KEY_MODE)
  await writeFileAtomic(certFile, certPem, CERT_MODE)
}

/** fsync the pki directory so that the renames are durable. */
export async function syncPkiDir(stateDir: string): Promise<void> {
  const fh = await open(pkiDir(stateDir), constants.O_RDONLY)
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Base names of the certificates in pki/ (`x.pem` but not `x-key.pem`), sorted; [] if the directory does not exist. */
export async function listCertificateNames(stateDir: string): Promise<string[]> {
  let entries: string[]
  try {
    entries = await readdir(pkiDir(stateDir))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }

  return entries
    .filter((f) => f.endsWith('.pem') && !f.endsWith('-key.pem'))
    .map((f) => f.slice(0, -'.pem'.length))
    .sort()
}

/** Tighten a key file readable by group or others to 0600. Returns true if it had to. */
export async function tightenKeyMode(file: string): Promise<boolean> {
  const st = await stat(file)
  if ((st.mode & 0o077) === 0) return false
  await chmod(file, KEY_MODE)
  return true
}

/** A certificate and its key as stored, for whoever uploads them to hosts. Undefined parts are missing files. */
export async function readCertificatePair(
  stateDir: string,
  name: string,
): Promise<{certPem: string | undefined; keyPem: string | undefined}> {
  const {certFile, keyFile} = certificatePaths(stateDir, name)
  const [certPem, keyPem] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)])
  return {certPem, keyPem}
}
