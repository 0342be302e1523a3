/**
 * `kflan doctor` wall time against a running lab: `npx tsx bench/doctor.ts [runs]`.
 *
 * Needs a converged lab (test/lab/lab.sh up; kflan init). Environment: KFLAN_LAB_ID (default 0),
 * KFLAN_STATE_DIR (the state dir `kflan init` used; default .kflan/<cluster>), or the arguments
 * `--inventory FILE --state-dir DIR`. Runs runDoctor in-process `runs` times (default 5) and
 * prints each wall time with its breakdown (slowest connect, slowest gather script, slowest ping
 * round), then the median; target: <= 2 s for 5 hosts. With --cli, also times `./bin/run.js
 * doctor` as a subprocess (node + oclif start-up included).
 */
import {execFileSync} from 'node:child_process'
import {availableParallelism} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {runDoctor} from '../src/doctor/index.js'
import {loadInventory} from '../src/inventory/load.js'
import {MemoryLogger} from '../src/remote/logger.js'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const opt = (name: string) => {
  const i = args.indexOf(name)
  return i === -1 ? undefined : args[i + 1]
}

const labId = process.env.KFLAN_LAB_ID ?? '0'
const inventory = opt('--inventory') ?? join(repo, labId === '0' ? '.lab' : `.lab${labId}`, 'inventory.yaml')
const runs = Number(args.find((a) => /^\d+$/.test(a)) ?? 5)
const {cluster} = loadInventory(inventory)
const stateDir = resolve(opt('--state-dir') ?? process.env.KFLAN_STATE_DIR ?? `.kflan/${cluster.name}`)

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const max = (xs: number[]) => (xs.length > 0 ? Math.max(...xs) : 0)

console.log(
  `node ${process.version}, ${availableParallelism()} CPUs, ${cluster.hosts.length} hosts, inventory ${inventory}, state ${stateDir}`,
)
const walls: number[] = []
for (let i = 0; i < runs; i++) {
  const log = new MemoryLogger()
  const t0 = performance.now()
  const report = await runDoctor(cluster, stateDir, {logger: log})
  const wall = performance.now() - t0
  walls.push(wall)
  const connect = log.entries.filter((e) => e.entry.kind === 'connect').map((e) => e.entry.durationMs ?? 0)
  const execs = log.entries.filter((e) => e.entry.kind === 'exec')
  const gather = execs
    .filter((e) => /^(sudo .*)?sh -s$/.test(e.entry.command ?? '') && (e.entry.stdinBytes ?? 0) > 1500)
    .map((e) => e.entry.durationMs ?? 0)
  const ping = execs
    .filter((e) => (e.entry.stdinBytes ?? 0) <= 1500 && (e.entry.stdout ?? '').match(/^\d+\.\d+\.\d+\.\d+ \d+/m))
    .map((e) => e.entry.durationMs ?? 0)
  const s = report.summary
  console.log(
    `run ${i + 1}: ${(wall / 1000).toFixed(2)} s wall (${s.ok} ok, ${s.warn} warn, ${s.fail} fail); slowest connect ${max(connect).toFixed(0)} ms, slowest gather ${max(gather).toFixed(0)} ms, slowest ping round ${max(ping).toFixed(0)} ms`,
  )
}

const m = median(walls)
console.log(
  `median ${(m / 1000).toFixed(2)} s over ${runs} runs (target <= 2 s for 5 hosts): ${m <= 2000 ? 'met' : 'NOT met'}`,
)

if (args.includes('--cli')) {
  const cli: number[] = []
  for (let i = 0; i < Math.min(runs, 3); i++) {
    const t0 = performance.now()
    try {
      execFileSync(join(repo, 'bin/run.js'), ['doctor', '-i', inventory, '--state-dir', stateDir, '--json'], {
        stdio: 'ignore',
      })
    } catch {
      /* exit 1 when a check failed: still timed */
    }

    cli.push(performance.now() - t0)
  }

  console.log(`CLI (./bin/run.js doctor --json, node start-up included): median ${(median(cli) / 1000).toFixed(2)} s`)
}
