/** etcd on the host: its data directory and the running member's command line and environment. */
import {shq} from '../remote/shell.js'
import {kv, type Probe} from './probe.js'

export interface EtcdData {
  dataDir: string
  exists: boolean
  nonEmpty: boolean
  hasMember: boolean
}

export function etcdDataProbe(dataDir: string): Probe<EtcdData> {
  const d = shq(dataDir)
  return {
    id: 'etcd-data',
    sh: `if [ -d ${d} ]; then echo exists=1; if [ -d ${d}/member ]; then echo member=1; fi; if [ -n "$(ls -A ${d} 2>/dev/null)" ]; then echo nonempty=1; fi; fi`,
    parse(o) {
      const r = kv(o.stdout)
      return {dataDir, exists: r.exists === '1', nonEmpty: r.nonempty === '1', hasMember: r.member === '1'}
    },
  }
}

export interface EtcdProcess {
  args: string[]
  env: Record<string, string>
}

/** `arg X` lines (argv) and `env ETCD_*=...` lines (pure); undefined when nothing runs. */
export function parseEtcdProcess(text: string): EtcdProcess | undefined {
  const args: string[] = []
  const env: Record<string, string> = {}
  for (const line of text.split('\n')) {
    if (line.startsWith('arg ')) args.push(line.slice(4))
    else if (line.startsWith('env ')) {
      const i = line.indexOf('=')
      if (i > 4) env[line.slice(4, i)] = line.slice(i + 1)
    }
  }

  return args.length > 0 ? {args, env} : undefined
}

/**
 * The running etcd's command line and its ETCD_* environment: what it really listens on and
 * authenticates with, whatever the files say now.
 */
export const etcdProcessProbe: Probe<EtcdProcess | undefined> = {
  id: 'etcd-proc',
  sh: String.raw`pid=$(unit etcd.service MainPID); if [ -n "$pid" ] && [ "$pid" != 0 ]; then tr "\0" "\n" </proc/$pid/cmdline 2>/dev/null | sed "s/^/arg /"; tr "\0" "\n" </proc/$pid/environ 2>/dev/null | grep "^ETCD_" | sed "s/^/env /"; fi`,
  units: ['etcd.service'],
  parse: (o) => parseEtcdProcess(o.stdout),
}

/** etcd's boolean flags: given bare on a command line (`--client-cert-auth`). */
const ETCD_BOOL_FLAGS = new Set([
  'auto-tls',
  'client-cert-auth',
  'enable-pprof',
  'enable-v2',
  'force-new-cluster',
  'peer-auto-tls',
  'peer-client-cert-auth',
  'strict-reconfig-check',
])

/**
 * A setting of the running etcd as etcd itself resolves it: the command-line flag, else the
 * ETCD_<NAME> variable (etcd refuses to start when both are given). undefined when neither is.
 */
export function etcdSetting(p: EtcdProcess, name: string): string | undefined {
  let flag: string | undefined // the last one given wins, as in Go's flag package
  for (let i = 1; i < p.args.length; i++) {
    const a = p.args[i].replace(/^--?/, '')
    if (a === p.args[i]) continue
    if (a.startsWith(`${name}=`)) flag = a.slice(name.length + 1)
    else if (a === name) flag = ETCD_BOOL_FLAGS.has(name) ? 'true' : p.args[i + 1]
  }

  return flag ?? p.env[`ETCD_${name.toUpperCase().replaceAll('-', '_')}`]
}
