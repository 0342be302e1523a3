/** Problems of one certificate against what the inventory needs (pure; used by certs check and doctor). */
import type {CertDescription, CertSpec} from './index.js'

export const WARN_DAYS = 30

export function certProblems(c: CertDescription & {keyMatches?: boolean | null}, want?: CertSpec): string[] {
  const out: string[] = []
  if (c.daysLeft < 0) out.push('expired')
  else if (c.daysLeft < WARN_DAYS) out.push(`warning: expires in ${c.daysLeft} days`)
  if (c.chainsToCa === false) out.push('not signed by the CA')
  if (c.keyMatches === false) out.push('key does not match')
  if (want) {
    const missing = [...want.ipAddresses.map((a) => `IP:${a}`), ...want.dnsNames.map((d) => `DNS:${d}`)].filter(
      (s) => !c.sans.includes(s),
    )
    if (missing.length > 0) out.push(`SANs lack ${missing.join(',')}`)
    const lacking = want.extKeyUsage.filter((u) => !c.usages.includes(u))
    if (lacking.length > 0) out.push(`usages lack ${lacking.join(',')}`)
  }

  return out
}
