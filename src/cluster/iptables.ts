/**
 * iptables rules as `iptables -S` prints them (pure): the parser, the FORWARD verdict for the pod
 * network, and the INPUT rules that block a port. Moved whole from doctor/host.ts (doctor's host
 * and data-plane checks use them); the tokenizer is src/host/iptables.ts's, shared with reset.
 */
import {splitRule} from '../host/iptables.js'

/** iptables -S output → rules per chain and policies. */
export function parseIptables(rules: string | string[]): {
  policy: Map<string, string>
  chains: Map<string, string[][]>
} {
  const policy = new Map<string, string>()
  const chains = new Map<string, string[][]>()
  for (const line of typeof rules === 'string' ? rules.split('\n') : rules) {
    const t = splitRule(line.trim())
    if (t[0] === '-P' && t.length >= 3) policy.set(t[1], t[2])
    else if (t[0] === '-N' && t[1]) chains.set(t[1], chains.get(t[1]) ?? [])
    else if (t[0] === '-A' && t[1]) chains.set(t[1], [...(chains.get(t[1]) ?? []), t.slice(2)])
  }

  return {policy, chains}
}

interface RuleView {
  target?: string
  /** Match options other than comments, with their values (`!` kept as its own entry). */
  matches: Map<string, string>
  negated: Set<string>
  raw: string[]
}

function viewRule(r: string[]): RuleView {
  const matches = new Map<string, string>()
  const negated = new Set<string>()
  let target: string | undefined
  for (let i = 0; i < r.length; i++) {
    const tok = r[i]
    if (tok === '!') {
      if (r[i + 1]) negated.add(r[i + 1])
      continue
    }

    if (tok === '-j' || tok === '-g') {
      target = r[i + 1]
      i++
      continue
    }

    if (tok === '-m') {
      i++ // module name: its options follow as their own tokens
      continue
    }

    if (tok === '--comment') {
      i++
      continue
    }

    if (tok.startsWith('-')) {
      const next = r[i + 1]
      if (next !== undefined && !next.startsWith('-') && next !== '!') {
        matches.set(tok, next)
        i++
      } else matches.set(tok, '')
    }
  }

  return {target, matches, negated, raw: r}
}

const TERMINAL = new Set(['ACCEPT', 'DROP', 'REJECT', 'RETURN'])

/**
 * Whether pod traffic (`-s NET` and `-d NET`) makes it through the FORWARD chain: the policy, or
 * an ACCEPT for the Network before any unconditional DROP, directly or in a chain jumped to
 * (FLANNEL-FWD, DOCKER-USER, ...).
 */
export function forwardVerdict(
  rulesText: string | string[],
  network: string,
): {ok: boolean; policy?: string; via: string[]} {
  const {policy, chains} = parseIptables(rulesText)
  const via: string[] = []
  const walk = (chain: string, dir: '-s' | '-d', depth: number): 'ACCEPT' | 'DROP' | undefined => {
    if (depth > 8) return undefined
    for (const raw of chains.get(chain) ?? []) {
      const r = viewRule(raw)
      if (!r.target) continue
      const keys = [...r.matches.keys()]
      const unconditional = keys.length === 0
      const forNet = keys.length === 1 && r.matches.get(dir) === network && !r.negated.has(dir)
      if (!unconditional && !forNet) continue
      if (r.target === 'ACCEPT') {
        via.push(`${chain}: ${raw.join(' ')}`)
        return 'ACCEPT'
      }

      if (r.target === 'DROP' || r.target === 'REJECT') return 'DROP'
      if (r.target === 'RETURN') return undefined
      if (!TERMINAL.has(r.target) && chains.has(r.target)) {
        const v = walk(r.target, dir, depth + 1)
        if (v) return v
      }
    }

    return undefined
  }

  const pol = policy.get('FORWARD')
  const s = walk('FORWARD', '-s', 0) ?? (pol === 'ACCEPT' ? 'ACCEPT' : 'DROP')
  const d = walk('FORWARD', '-d', 0) ?? (pol === 'ACCEPT' ? 'ACCEPT' : 'DROP')
  return {ok: s === 'ACCEPT' && d === 'ACCEPT', policy: pol, via: [...new Set(via)]}
}

/** INPUT rules that drop or reject one of `ports` ("8472/udp"), directly or in a chain INPUT jumps to. */
export function blockingInputRules(rulesText: string | string[], ports: string[]): {port: string; rule: string}[] {
  const {chains} = parseIptables(rulesText)
  const out: {port: string; rule: string}[] = []
  const seen = new Set<string>()
  const walk = (chain: string, depth: number) => {
    if (depth > 8 || seen.has(chain)) return
    seen.add(chain)
    for (const raw of chains.get(chain) ?? []) {
      const r = viewRule(raw)
      if (!r.target) continue
      if (r.target === 'DROP' || r.target === 'REJECT') {
        const proto = r.negated.has('-p') ? undefined : r.matches.get('-p')
        const dport = r.negated.has('--dport') ? undefined : (r.matches.get('--dport') ?? r.matches.get('--dports'))
        if (!dport) continue // a rule for all ports is policy-like; not reported here
        for (const p of ports) {
          const [num, pr] = p.split('/')
          if (proto && proto !== pr) continue
          if (dport.split(',').some((d) => portIn(d, Number(num))))
            out.push({port: p, rule: `-A ${chain} ${raw.join(' ')}`})
        }
      } else if (!TERMINAL.has(r.target) && chains.has(r.target)) walk(r.target, depth + 1)
    }
  }

  walk('INPUT', 0)
  return out
}

function portIn(spec: string, port: number): boolean {
  const [a, b] = spec.split(':').map(Number)
  return b === undefined ? a === port : port >= a && port <= b
}
