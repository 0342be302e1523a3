/**
 * Whether to trust the host key a server presents: the rules, pure, and the error the user sees
 * when a key is refused. The known_hosts file itself (parsing, matching, recording) is hostkeys.ts.
 *
 * Rules: a key recorded for the host → ok; a host kflan has never seen → refused unless its
 * fingerprint equals the inventory's `hostKey` or `acceptNew` is set (then recorded); a key that
 * differs from the recorded one → refused, unless the inventory pins exactly the new key.
 *
 * Why the pin wins over the record: the pin is what the operator wrote down after checking the
 * host (or what a lab or VM builder wrote when it made the host), the record is only what kflan
 * saw first. A re-installed host with a re-pinned inventory is the normal case (`lab.sh down` +
 * `up`, a rebuilt VM); the old lines are then replaced and the run says so. A pin that does not
 * match, or no pin, still refuses a changed key: `acceptNew` never overrides a record.
 */
import {HostKeyError, type HostKeyProblem} from './errors.js'
import {
  entriesForHost,
  fingerprintSha256,
  hostsFieldMatches,
  keyTypeOf,
  type KnownHostEntry,
  normalizeFingerprint,
} from './hostkeys.js'

const ALGOS_FOR_TYPE: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  'ssh-dss': ['ssh-dss'],
}

/**
 * Host key algorithms to offer for a host already in known_hosts, so the server presents a key of
 * a type we have recorded (as OpenSSH does). Undefined: no preference (host unknown).
 */
export function hostKeyAlgorithmsFor(entries: KnownHostEntry[], hostId: string): string[] | undefined {
  const types = entriesForHost(entries, hostId)
    .filter((e) => !e.marker)
    .map((e) => e.keyType)
  const algos: string[] = []
  for (const t of types) for (const a of ALGOS_FOR_TYPE[t] ?? []) if (!algos.includes(a)) algos.push(a)
  return algos.length > 0 ? algos : undefined
}

export type HostKeyDecision =
  | {ok: true; action: 'known' | 'pinned' | 'accept-new'; fingerprint: string; keyType: string}
  | {ok: true; action: 'repinned'; fingerprint: string; keyType: string; replaces: number[]}
  | {ok: false; problem: HostKeyProblem; fingerprint: string; keyType: string; lines: number[]}

export interface HostKeyInput {
  entries: KnownHostEntry[]
  hostId: string
  /** Raw public key blob the server presented. */
  key: Buffer
  /** Fingerprint from the inventory (`hostKey:`), if any. */
  pin?: string
  acceptNew?: boolean
}

/**
 * The verification rules, pure. `pinned` and `accept-new` mean: trust it and record it; `repinned`:
 * trust it, and record it in place of the lines in `replaces`.
 */
export function decideHostKey(input: HostKeyInput): HostKeyDecision {
  const fingerprint = fingerprintSha256(input.key)
  const keyType = keyTypeOf(input.key)
  const b64 = input.key.toString('base64')
  const mine = entriesForHost(input.entries, input.hostId)
  const revoked = input.entries.filter(
    (e) => e.marker === '@revoked' && e.key === b64 && hostsFieldMatches(e.hosts, input.hostId),
  )
  if (revoked.length > 0)
    return {ok: false, problem: 'revoked', fingerprint, keyType, lines: revoked.map((e) => e.line)}
  const plain = mine.filter((e) => !e.marker)
  const pin = input.pin ? normalizeFingerprint(input.pin) : undefined
  if (plain.length > 0) {
    if (!plain.some((e) => e.keyType === keyType && e.key === b64)) {
      // Only lines that name this host alone can be replaced; a shared or wildcard line is the user's.
      const own = plain.every((e) => e.hosts.startsWith('|1|') || e.hosts.toLowerCase() === input.hostId.toLowerCase())
      if (pin === fingerprint && own)
        return {ok: true, action: 'repinned', fingerprint, keyType, replaces: plain.map((e) => e.line)}
      return {ok: false, problem: 'changed', fingerprint, keyType, lines: plain.map((e) => e.line)}
    }

    if (pin && pin !== fingerprint) return {ok: false, problem: 'pin-mismatch', fingerprint, keyType, lines: []}
    return {ok: true, action: 'known', fingerprint, keyType}
  }

  if (pin) {
    if (pin === fingerprint) return {ok: true, action: 'pinned', fingerprint, keyType}
    return {ok: false, problem: 'pin-mismatch', fingerprint, keyType, lines: []}
  }

  if (input.acceptNew) return {ok: true, action: 'accept-new', fingerprint, keyType}
  return {ok: false, problem: 'unknown', fingerprint, keyType, lines: []}
}

/** Turns a refusal into the error the user sees, with what to check. */
export function hostKeyError(opts: {
  host: string
  hostId: string
  decision: Extract<HostKeyDecision, {ok: false}>
  knownHostsPath: string
  pin?: string
}): HostKeyError {
  const {host, hostId, decision: d, knownHostsPath: p} = opts
  const lines = d.lines.join(', ')
  switch (d.problem) {
    case 'changed': {
      return new HostKeyError({
        host,
        problem: 'changed',
        fingerprint: d.fingerprint,
        knownHostsPath: p,
        message: `HOST KEY CHANGED for ${hostId}: it now presents ${d.keyType} ${d.fingerprint}, which differs from the key recorded in ${p} (line ${lines})`,
        hint:
          `Someone could be intercepting the connection (man-in-the-middle), or the host was reinstalled or its SSH keys regenerated. ` +
          `Check the key on the host's console (\`ssh-keygen -lf /etc/ssh/ssh_host_${keyFileSuffix(d.keyType)}_key.pub\`). ` +
          `Only if the change is expected, remove line ${lines} from ${p} (or \`ssh-keygen -R '${hostId}' -f ${p}\`) and run again.`,
      })
    }

    case 'pin-mismatch': {
      return new HostKeyError({
        host,
        problem: 'pin-mismatch',
        fingerprint: d.fingerprint,
        knownHostsPath: p,
        message: `host key of ${hostId} is ${d.keyType} ${d.fingerprint}, but the inventory expects ${opts.pin ? normalizeFingerprint(opts.pin) : '?'}`,
        hint:
          `Either the inventory's hostKey is wrong or someone is intercepting the connection. Read the real fingerprint on the host ` +
          `(\`ssh-keygen -lf /etc/ssh/ssh_host_${keyFileSuffix(d.keyType)}_key.pub\`) and fix the inventory.`,
      })
    }

    case 'revoked': {
      return new HostKeyError({
        host,
        problem: 'revoked',
        fingerprint: d.fingerprint,
        knownHostsPath: p,
        message: `host key ${d.fingerprint} of ${hostId} is marked @revoked in ${p} (line ${lines})`,
        hint: `The host presents a key that was explicitly revoked. Do not connect until the host's keys are regenerated and verified.`,
      })
    }

    default: {
      return new HostKeyError({
        host,
        problem: 'unknown',
        fingerprint: d.fingerprint,
        knownHostsPath: p,
        message: `unknown host key for ${hostId}: ${d.keyType} ${d.fingerprint} (not in ${p})`,
        hint:
          `Verify the fingerprint on the host (\`ssh-keygen -lf /etc/ssh/ssh_host_${keyFileSuffix(d.keyType)}_key.pub\`) and put it in the inventory ` +
          `as \`hostKey: ${d.fingerprint}\`, or run with --accept-new-host-keys to trust and record new host keys on first use.`,
      })
    }
  }
}

function keyFileSuffix(keyType: string): string {
  if (keyType.startsWith('ecdsa')) return 'ecdsa'
  if (keyType === 'ssh-rsa') return 'rsa'
  if (keyType === 'ssh-dss') return 'dsa'
  return 'ed25519'
}
