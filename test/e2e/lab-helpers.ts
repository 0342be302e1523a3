/**
 * Helpers for e2e tests that run against the lab (test/lab/lab.sh, docs/lab.md).
 *
 * API (keep it small):
 *   requireLab()            at module level: `describe.skipIf(!requireLab())(...)`. False (with the
 *                           reason printed) when the lab cannot run here; throws when CI=true.
 *   labUnavailableReason()  why the lab cannot run here, or undefined.
 *   labUp({masters, nodes, flannel, etcd})
 *                           `lab.sh up` (takes a running lab down first) with those bundle versions
 *                           (default: the lab's defaults); returns the hosts.
 *   labDown()               `lab.sh down` (idempotent).
 *   runLab(args, opts)      any lab.sh command; throws on a non-zero exit unless {check: false}.
 *   readHosts()             the lab's hosts from .lab/hosts.json.
 *   host(name)              one of them, by name.
 *   sshExec(h, cmd, opts)   runs a shell command on a host over SSH with the lab key, checking the
 *                           host key against .lab/known_hosts; throws on non-zero unless {check: false}.
 *   labExec(name, cmd)      runs a shell command inside a host WITHOUT ssh (nsenter), e.g. faults.
 *   scpTo(h, local, remote) copies a local file to a host.
 *   LAB                     paths: repo, script, dir, key, knownHosts, inventory, hostsJson.
 *
 * Commands are shell strings, run by the remote (or nsentered) /bin/sh, like ssh does.
 */
import {execFile, spawnSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const labId = process.env.KFLAN_LAB_ID ?? '0'
const dir = process.env.KFLAN_LAB_DIR ?? join(repo, labId === '0' ? '.lab' : `.lab${labId}`)

export const LAB = {
  repo,
  script: join(repo, 'test/lab/lab.sh'),
  dir,
  key: join(dir, 'id_ed25519'),
  knownHosts: join(dir, 'known_hosts'),
  inventory: join(dir, 'inventory.yaml'),
  hostsJson: join(dir, 'hosts.json'),
} as const

export interface LabHost {
  name: string
  address: string
  role: 'master' | 'node'
  /** PID (on this machine) of the host's systemd-nspawn. */
  pid: number
  /** ed25519 host key fingerprint, as `ssh-keygen -lf` prints it ("SHA256:..."). */
  hostKey: string
  /** The host's known_hosts line. */
  hostKeyLine: string
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** Throw when the exit code is not 0 (default true). */
  check?: boolean
  /** Kill the command after this long (default 120 s). */
  timeoutMs?: number
  /** Text fed to stdin. */
  input?: string
  /** Environment of the command (default: this process's). */
  env?: NodeJS.ProcessEnv
}

/** Why the lab cannot run on this machine, or undefined when it can. */
export function labUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'the lab needs Linux'
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, mounts, systemd-nspawn)'
  for (const cmd of ['systemd-nspawn', 'debootstrap', 'ip', 'iptables', 'nsenter', 'ssh', 'jq']) {
    if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) return `${cmd} is not installed (see docs/lab.md)`
  }

  return undefined
}

/**
 * Gate for a lab test file: `describe.skipIf(!requireLab())('...', () => {...})`.
 * Prints why and returns false when the lab cannot run here; under CI=true it throws instead, so a
 * CI machine that lost the lab fails loudly rather than skipping.
 */
export function requireLab(): boolean {
  const reason = labUnavailableReason()
  if (!reason) return true
  if (process.env.CI === 'true') throw new Error(`lab e2e tests cannot run on this CI machine: ${reason}`)
  console.warn(`skipping lab e2e tests: ${reason}`)
  return false
}

/** Runs a command; resolves with its exit code and output (throws on failure when check). */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const {check = true, timeoutMs = 120_000, input, env} = opts
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      cmd,
      args,
      {timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8', env},
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0
        const result = {code, stdout, stderr}
        if (check && code !== 0) {
          const why = error?.killed ? `timed out after ${timeoutMs} ms` : `exit ${code}`
          reject(new Error(`${cmd} ${args.join(' ')}: ${why}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`))
        } else resolvePromise(result)
      },
    )
    // The command may exit before reading its stdin: ignore EPIPE there.
    child.stdin?.on('error', () => {})
    if (input === undefined) {
      child.stdin?.end()
    } else {
      child.stdin?.end(input)
    }
  })
}

/** Runs `lab.sh ARGS...`. */
export function runLab(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(LAB.script, args, {timeoutMs: 600_000, ...opts})
}

/**
 * Boots the lab (a running lab is taken down first) and returns its hosts. A bundle that is not
 * cached yet is built first (minutes each on 2 cores; the caller's hook timeout must allow it, see
 * docs/lab.md: `lab.sh bundles` ahead of the tests avoids it).
 */
export async function labUp(
  opts: {masters?: number; nodes?: number; flannel?: string; etcd?: string} = {},
): Promise<LabHost[]> {
  const versions = [...(opts.flannel ? ['--flannel', opts.flannel] : []), ...(opts.etcd ? ['--etcd', opts.etcd] : [])]
  await runLab(['up', '--masters', String(opts.masters ?? 3), '--nodes', String(opts.nodes ?? 2), ...versions], {
    timeoutMs: 40 * 60_000,
  })
  return readHosts()
}

/** Removes the lab; harmless when none is up. */
export async function labDown(): Promise<void> {
  await runLab(['down'], {timeoutMs: 60_000})
}

/** The hosts of the running lab (.lab/hosts.json). */
export function readHosts(): LabHost[] {
  if (!existsSync(LAB.hostsJson)) throw new Error(`no lab is up (${LAB.hostsJson} missing): run test/lab/lab.sh up`)
  return JSON.parse(readFileSync(LAB.hostsJson, 'utf8')) as LabHost[]
}

/** One host of the running lab, by name. */
export function host(name: string): LabHost {
  const h = readHosts().find((x) => x.name === name)
  if (!h) throw new Error(`no lab host named ${name}`)
  return h
}

function sshArgs(): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    LAB.key,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    `UserKnownHostsFile=${LAB.knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'ConnectTimeout=5',
    '-o',
    'LogLevel=ERROR',
  ]
}

const addressOf = (h: LabHost | string): string => (typeof h === 'string' ? host(h).address : h.address)

/** Runs a shell command on a lab host over SSH as root with the lab key. */
export function sshExec(h: LabHost | string, command: string, opts: RunOptions = {}): Promise<RunResult> {
  return run('ssh', [...sshArgs(), `root@${addressOf(h)}`, command], opts)
}

/** Copies a local file to a lab host (scp with the lab key). */
export async function scpTo(h: LabHost | string, localPath: string, remotePath: string): Promise<void> {
  await run('scp', [...sshArgs(), '-q', localPath, `root@${addressOf(h)}:${remotePath}`])
}

/** Runs a shell command inside a lab host without SSH (nsenter into its namespaces). */
export function labExec(name: string, command: string, opts: RunOptions = {}): Promise<RunResult> {
  return runLab(['exec', name, command], {timeoutMs: 120_000, ...opts})
}
