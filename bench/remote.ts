/**
 * The SSH layer's speed against a running lab: `npx tsx bench/remote.ts [runs]`.
 *
 * Needs a lab that is up (test/lab/lab.sh up; KFLAN_LAB_ID picks which). Prints, with its target:
 * - exec round trip of `true` on one connection (20 per run): median, min; target median < 200 ms;
 * - a converged re-run on up to 5 hosts: connect + facts + a check of 12 unchanged files, per run;
 *   target < 3 s.
 * These used to be timed assertions in test/e2e/remote.test.ts; a loaded machine must not fail
 * CI, so they are figures here. Everything it writes lives under /var/tmp/kflan-remote-bench on
 * the hosts and is removed at the end.
 */
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {gatherFacts} from '../src/host/facts.js'
import {writeFiles} from '../src/remote/files.js'
import {closeAll, type ConnectOptions, Remote, type TargetSpec} from '../src/remote/ssh.js'
import {connectAll} from '../test/e2e/remote-helpers.js'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const labId = process.env.KFLAN_LAB_ID ?? '0'
const labDir = process.env.KFLAN_LAB_DIR ?? join(repo, labId === '0' ? '.lab' : `.lab${labId}`)
const runs = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 3)
const BASE = '/var/tmp/kflan-remote-bench'

interface LabHost {
  name: string
  address: string
  hostKey: string
}
let hosts: LabHost[]
try {
  hosts = JSON.parse(readFileSync(join(labDir, 'hosts.json'), 'utf8')) as LabHost[]
} catch {
  console.error(`bench/remote: no lab is up (${join(labDir, 'hosts.json')}): run test/lab/lab.sh up first`)
  process.exit(2)
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const work = mkdtempSync(join(tmpdir(), 'kflan-remote-bench-'))
const target = (h: LabHost): TargetSpec => ({
  name: h.name,
  address: h.address,
  port: 22,
  user: 'root',
  identityFile: join(labDir, 'id_ed25519'),
  hostKey: h.hostKey,
})
const opts: ConnectOptions = {knownHostsPath: join(work, 'known_hosts')}

console.log(`node ${process.version}, ${availableParallelism()} CPUs, ${hosts.length} lab hosts (lab ${labId})`)
try {
  const root = await Remote.connect(target(hosts[0]), opts)
  const rtt: number[] = []
  for (let r = 0; r < runs; r++) {
    const times: number[] = []
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now()
      await root.run('true')
      times.push(performance.now() - t0)
    }

    rtt.push(median(times))
    console.log(
      `exec round trip, run ${r + 1} (20 × true on ${hosts[0].name}): median ${median(times).toFixed(1)} ms, min ${Math.min(...times).toFixed(1)} ms`,
    )
  }

  console.log(
    `exec round trip: median ${median(rtt).toFixed(1)} ms (target < 200 ms): ${median(rtt) < 200 ? 'met' : 'NOT met'}; connect ${root.connectMs.toFixed(0)} ms`,
  )
  await closeAll([root])

  const specs = Array.from({length: 12}, (_, i) => ({path: `${BASE}/f${i}.conf`, content: `file ${i}\n`, mode: 0o644}))
  const targets = hosts.slice(0, 5).map(target)
  const first = await connectAll(targets, opts)
  if (first.failures.length > 0)
    throw new Error(`cannot connect: ${first.failures.map((f) => f.target.name).join(', ')}`)
  await Promise.all(first.remotes.map((r) => writeFiles(r, specs, {stateDir: `${BASE}/state`})))
  await closeAll(first.remotes)
  const totals: number[] = []
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now()
    const res = await connectAll(targets, opts)
    const tConn = performance.now() - t0
    const out = await Promise.all(
      res.remotes.map(async (x) => {
        await gatherFacts(x)
        return writeFiles(x, specs, {stateDir: `${BASE}/state`})
      }),
    )
    const total = performance.now() - t0
    totals.push(total)
    if (!out.flat().every((c) => c.result === 'unchanged')) throw new Error('the converged re-run changed files')
    console.log(
      `converged re-run ${r + 1} on ${targets.length} hosts: connect ${tConn.toFixed(0)} ms, connect+facts+12-file check ${total.toFixed(0)} ms (${res.remotes[0].execCount} round trips per host)`,
    )
    if (r === runs - 1) await Promise.all(res.remotes.map((x) => x.run(`rm -rf ${BASE}`)))
    await closeAll(res.remotes)
  }

  console.log(
    `converged re-run: median ${median(totals).toFixed(0)} ms (target < 3000 ms): ${median(totals) < 3000 ? 'met' : 'NOT met'}`,
  )
} finally {
  rmSync(work, {recursive: true, force: true})
}
