/** iptables: the rules of a table as `iptables -S` prints them, and the tokenizer of those lines. */
import {lines, type Probe} from './probe.js'

/** undefined: iptables is not installed. `error`: it is, but the table could not be read. */
export type IptablesTable = undefined | {rules: string[]; error?: string}

/** The probe's output (pure). */
export function parseIptablesOut(o: {stdout: string; stderr: string; rc: number | null}): IptablesTable {
  if (o.stdout.trim().startsWith('#missing')) return undefined
  const rules = lines(o.stdout).filter((l) => l.startsWith('-'))
  if (o.rc === 0) return {rules}
  return {rules, error: o.stderr.trim().split('\n')[0] || (o.rc === null ? 'no output' : `iptables exited ${o.rc}`)}
}

/** `iptables -S` of a table (root; waits up to 5 s for the xtables lock), in the background. */
export function iptablesProbe(table: 'filter' | 'nat' = 'filter'): Probe<IptablesTable> {
  const t = table === 'filter' ? '' : ` -t ${table}`
  return {
    id: `iptables-${table}`,
    sh: `if has iptables; then if has timeout; then timeout 10 iptables -w 5${t} -S; else iptables -w 5${t} -S; fi; else echo "#missing"; fi`,
    background: true,
    parse: (o) => parseIptablesOut(o),
  }
}

/** A chain's policy (`-P FORWARD DROP`) (pure). */
export function chainPolicy(rules: string[], chain: string): string | undefined {
  for (const l of rules) {
    const t = splitRule(l)
    if (t[0] === '-P' && t[1] === chain) return t[2]
  }

  return undefined
}

/** Splits an `iptables -S` line into arguments (double quotes as iptables prints them). */
export function splitRule(line: string): string[] {
  const out: string[] = []
  let cur = ''
  let inTok = false
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]
    if (quoted) {
      if (ch === '\\' && i + 1 < line.length) cur += line[++i]
      else if (ch === '"') quoted = false
      else cur += ch
    } else if (ch === '"') {
      quoted = true
      inTok = true
    } else if (/\s/.test(ch)) {
      if (inTok) out.push(cur)
      cur = ''
      inTok = false
    } else {
      cur += ch
      inTok = true
    }
  }

  if (inTok) out.push(cur)
  return out
}
