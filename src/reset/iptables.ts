import {splitRule} from '../host/iptables.js'
/**
 * The iptables rules kflan's stack leaves behind, found in `iptables -S` output (pure):
 *  - flanneld's chains FLANNEL-POSTRTG (nat) and FLANNEL-FWD (filter) and their jumps, recognised
 *    by flannel's comments "flanneld masq" / "flanneld forward" (flannel >= 0.17);
 *  - flannel < 0.17's rules directly in POSTROUTING / FORWARD (no comment, only the network);
 *  - kflan's own `FORWARD -s/-d <network> -j ACCEPT` from the docker drop-in;
 *  - docker's `-s <flannel subnet> ! -o docker0 -j MASQUERADE` for a docker0 inside the network.
 */
import {type Cidr, cidrContainsCidr, parseCidr} from '../inventory/net.js'
import {shq} from '../remote/shell.js'

export type IptablesOp =
  | {kind: 'delete'; table: 'filter' | 'nat'; chain: string; args: string[]}
  | {kind: 'drop-chain'; table: 'filter' | 'nat'; chain: string}

export const FLANNEL_CHAINS = {nat: 'FLANNEL-POSTRTG', filter: 'FLANNEL-FWD'} as const

/** The rule of an `-A CHAIN ...` line in a chain, or undefined. */
function ruleIn(line: string, chain: string): string[] | undefined {
  const t = splitRule(line)
  return t[0] === '-A' && t[1] === chain ? t.slice(2) : undefined
}

function commentOf(args: string[]): string | undefined {
  const i = args.indexOf('--comment')
  return i === -1 ? undefined : args[i + 1]
}

const cidrOf = (s: string | undefined): Cidr | undefined => {
  if (!s) return undefined
  const c = parseCidr(s.includes('/') ? s : `${s}/32`)
  return typeof c === 'string' ? undefined : c
}

const sameArgs = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i])

/** Old flannel's POSTROUTING rules: only -s/-d matches (optionally negated) on addresses, RETURN or MASQUERADE. */
function isOldFlannelMasq(args: string[], net: Cidr): boolean {
  let i = 0
  let touchesNet = false
  while (i < args.length) {
    if (args[i] === '!') i++
    const opt = args[i]
    if (opt === '-s' || opt === '-d') {
      const c = cidrOf(args[i + 1])
      if (!c) return false
      if (cidrContainsCidr(net, c)) touchesNet = true
      else if (args[i + 1] !== '224.0.0.0/4') return false
      i += 2
    } else if (opt === '-j') {
      const target = args[i + 1]
      if (target !== 'RETURN' && target !== 'MASQUERADE') return false
      i += 2
      if (args[i] === '--random-fully') i++
      if (i !== args.length) return false
    } else return false
  }

  return touchesNet
}

/** Docker's masquerade rule for a docker0 that sat inside the flannel network. */
function isDockerMasqForNetwork(args: string[], net: Cidr): boolean {
  if (!sameArgs(args.slice(2), ['!', '-o', 'docker0', '-j', 'MASQUERADE']) || args[0] !== '-s') return false
  const c = cidrOf(args[1])
  return c !== undefined && cidrContainsCidr(net, c) && c.prefix > net.prefix
}

/**
 * The deletions that take flannel's and kflan's rules out, in a safe order: jumps and rules first,
 * then the chains (pure).
 */
export function iptablesCleanup(filter: string[], nat: string[], network: string): IptablesOp[] {
  const net = cidrOf(network)
  const ops: IptablesOp[] = []
  const add = (op: IptablesOp) => {
    if (
      !ops.some(
        (o) =>
          o.kind === op.kind &&
          o.table === op.table &&
          o.chain === op.chain &&
          (o.kind === 'drop-chain' || sameArgs(o.args, (op as {args: string[]}).args)),
      )
    )
      ops.push(op)
  }

  for (const line of filter) {
    const args = ruleIn(line, 'FORWARD')
    if (!args) continue
    const kflanAccept =
      net && (sameArgs(args, ['-s', network, '-j', 'ACCEPT']) || sameArgs(args, ['-d', network, '-j', 'ACCEPT']))
    if (commentOf(args) === 'flanneld forward' || kflanAccept)
      add({kind: 'delete', table: 'filter', chain: 'FORWARD', args})
  }

  for (const line of nat) {
    const args = ruleIn(line, 'POSTROUTING')
    if (!args) continue
    if (
      commentOf(args) === 'flanneld masq' ||
      (net && (isOldFlannelMasq(args, net) || isDockerMasqForNetwork(args, net)))
    ) {
      add({kind: 'delete', table: 'nat', chain: 'POSTROUTING', args})
    }
  }

  const declared = (lines: string[], chain: string) => lines.some((l) => sameArgs(splitRule(l), ['-N', chain]))
  if (declared(filter, FLANNEL_CHAINS.filter)) add({kind: 'drop-chain', table: 'filter', chain: FLANNEL_CHAINS.filter})
  if (declared(nat, FLANNEL_CHAINS.nat)) add({kind: 'drop-chain', table: 'nat', chain: FLANNEL_CHAINS.nat})
  return ops
}

/** How an op reads in the plan (an iptables command line). */
export function describeOp(op: IptablesOp): string {
  const t = op.table === 'filter' ? '' : ` -t ${op.table}`
  if (op.kind === 'drop-chain') return `iptables${t} -F ${op.chain} && iptables${t} -X ${op.chain}`
  return `iptables${t} -D ${op.chain} ${op.args.map(shq).join(' ')}`
}

/**
 * The shell that applies the ops. Deleting repeats while the rule is there (duplicates happen);
 * a chain still referenced by a foreign rule is left, with a `warn:` line on stdout.
 */
export function iptablesScript(ops: IptablesOp[]): string {
  const out: string[] = []
  for (const op of ops) {
    if (op.kind === 'delete') {
      const a = op.args.map(shq).join(' ')
      out.push(
        `n=0; while [ $n -lt 32 ] && iptables -w -t ${op.table} -C ${op.chain} ${a} 2>/dev/null; do iptables -w -t ${op.table} -D ${op.chain} ${a} || break; n=$((n+1)); done`,
      )
    } else {
      out.push(
        `if iptables -w -t ${op.table} -S ${op.chain} >/dev/null 2>&1; then iptables -w -t ${op.table} -F ${op.chain} && iptables -w -t ${op.table} -X ${op.chain} 2>/dev/null || echo ${shq(`warn: iptables chain ${op.chain} (${op.table}) is still referenced by another rule; left in place`)}; fi`,
      )
    }
  }

  return out.join('\n') + '\n'
}
