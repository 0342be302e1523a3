/**
 * Running the built kflan CLI against the lab, and reading cluster state off the lab hosts.
 * `npm test` builds first; run `npm run build` before running an e2e file on its own.
 */
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {LAB, run, type RunResult, sshExec} from './lab-helpers.js'

export const KFLAN = join(LAB.repo, 'bin/run.js')

/** Runs `kflan ARGS` (never throws; look at .code). */
export function kflan(args: string[], opts: {env?: NodeJS.ProcessEnv; timeoutMs?: number} = {}): Promise<RunResult> {
  return run(process.execPath, [KFLAN, ...args], {
    check: false,
    env: {...process.env, ...opts.env},
    timeoutMs: opts.timeoutMs ?? 240_000,
  })
}

export function tempStateDir(): string {
  return mkdtempSync(join(tmpdir(), 'kflan-e2e-'))
}

/**
 * The lab's inventory with YAML edits applied (string replacements on the text), written to a
 * temp file: tests derive topologies from the hosts the lab booted.
 */
export function labInventory(edit: (text: string) => string = (t) => t): string {
  const file = join(mkdtempSync(join(tmpdir(), 'kflan-inv-')), 'inventory.yaml')
  writeFileSync(file, edit(readFileSync(LAB.inventory, 'utf8')))
  return file
}

export const ETCDCTL =
  'ETCDCTL_API=3 /opt/etcd/bin/etcdctl --cacert=/opt/etcd/ssl/ca.pem --cert=/opt/etcd/ssl/server.pem --key=/opt/etcd/ssl/server-key.pem'

/** systemd's InvocationID and ActiveEnterTimestamp of units: a restart changes both. */
export async function unitStamps(host: string, units: string[]): Promise<string> {
  const r = await sshExec(
    host,
    units.map((u) => `systemctl show ${u} -p InvocationID -p ActiveEnterTimestamp`).join('; '),
  )
  return r.stdout
}

/** mtime and sha256 of files, one line each (absent files say so). */
export async function fileStamps(host: string, paths: string[]): Promise<string> {
  const r = await sshExec(
    host,
    paths
      .map(
        (p) =>
          `if [ -e ${p} ]; then echo "${p} $(stat -c %Y.%Z ${p}) $(sha256sum < ${p} | cut -c1-16)"; else echo "${p} absent"; fi`,
      )
      .join('; '),
  )
  return r.stdout
}

export function parseEnv(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .map((l) => /^([A-Z_0-9]+)=(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], m[2].replace(/^"(.*)"$/, '$1')]),
  )
}
