/**
 * Least privilege in etcd (v3 authentication with roles), as data: who may do what, the state
 * read from a member, and the etcdctl steps between them. Pure; the auth phase runs it.
 *
 * With client-cert-auth on, etcd takes the client certificate's CN as the user name (users
 * created with --no-password: no password exists that could leak). Users and roles:
 *   - `flanneld` (flanneld's certificate): role `flannel`: read `<prefix>/config`, read and write
 *     the keys under `<prefix>/subnets` (leases), and nothing else: no write outside the prefix,
 *     no change or delete of the network config.
 *   - each etcd member's name (the CN of its server certificate): role `root`. kflan's own
 *     etcdctl calls run ON the members (over SSH) with the member's own certificate, so the full
 *     access kflan admin key no longer has to sit on every member. This gives nothing away: root
 *     on a member host owns its data dir and its server key, that is every key in etcd anyway.
 *   - `kflan` (the admin certificate, kept in the operator's state dir only): role `root`, for an
 *     operator's own etcdctl from their machine.
 *   - `root`: etcd requires it before `auth enable`; no password and no certificate with that CN
 *     is ever issued, so nobody can log in as it.
 * Users and roles kflan does not know are left alone; kflan's own are made to match (extra
 * permissions on role `flannel` are revoked).
 *
 * flannel < 0.18 reads its config and leases through the v2 API, which v3 auth does not cover:
 * etcd's v2 keyspace stays writable by any certificate of the cluster's CA. kflan still enables
 * v3 auth there (the v3 keyspace is protected, the admin key leaves the members) and says so in a
 * warning; the fix is flannel >= 0.18.
 */
import type {Cluster} from '../inventory/model.js'

import {etcdMembers} from '../inventory/model.js'
import {shq} from '../remote/shell.js'

export const ROOT = 'root'
export const FLANNEL_ROLE = 'flannel'
/** CNs of the client certificates (src/pki/plan.ts CLIENT_NAMES). */
export const FLANNEL_USER = 'flanneld'
export const ADMIN_USER = 'kflan'
/** A user that never exists: logging in as it tells whether auth is on (etcd 3.4 has no `auth status`). */
export const PROBE_USER = 'kflan-auth-probe'

export type PermType = 'read' | 'write' | 'readwrite'

export interface Perm {
  type: PermType
  key: string
  /** `--prefix`: every key starting with `key`. */
  prefix: boolean
}

export interface AuthModel {
  /** user → roles */
  users: Map<string, string[]>
  /** role → permissions (only the roles kflan manages; `root` is built in). */
  roles: Map<string, Perm[]>
}

export interface AuthState extends AuthModel {
  enabled: boolean
}

export function desiredAuth(c: Cluster): AuthModel {
  const users = new Map<string, string[]>([[ROOT, [ROOT]]])
  for (const m of etcdMembers(c)) users.set(m.name, [ROOT])
  users.set(ADMIN_USER, [ROOT])
  users.set(FLANNEL_USER, [FLANNEL_ROLE])
  const p = c.flannel.prefix
  const roles = new Map<string, Perm[]>([
    [
      FLANNEL_ROLE,
      [
        {type: 'read', key: `${p}/config`, prefix: false},
        {type: 'readwrite', key: `${p}/subnets`, prefix: true},
      ],
    ],
  ])
  return {users, roles}
}

const permId = (p: Perm) => `${p.type} ${p.key}${p.prefix ? ' (prefix)' : ''}`

/** etcd's range end for a prefix: the key with its last byte incremented. */
export function prefixEnd(key: string): string {
  const b = Buffer.from(key)
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      b[i]++
      return b.subarray(0, i + 1).toString('latin1')
    }
  }

  return '\0'
}

const SECTION = '@@kflan-auth'

/** One shell script that prints the auth state for the users and roles of `model` (pure). */
export function authStateScript(model: AuthModel, etcdctl: (args: string) => string): string {
  const lines = [
    `echo ${SECTION} probe; ${etcdctl(`--user=${PROBE_USER}:x get ${shq(`/${PROBE_USER}`)}`)} 2>&1 >/dev/null | tail -n 3`,
  ]
  for (const u of model.users.keys())
    lines.push(`echo ${SECTION} user ${shq(u)}; ${etcdctl(`user get ${shq(u)} -w json`)} 2>&1 | tail -n 1`)
  for (const r of model.roles.keys())
    lines.push(`echo ${SECTION} role ${shq(r)}; ${etcdctl(`role get ${shq(r)} -w json`)} 2>&1 | tail -n 1`)
  return lines.join('\n')
}

const PERM_TYPES: PermType[] = ['read', 'write', 'readwrite']

/** Parses authStateScript's output (pure). Throws when a section says something unexpected. */
export function parseAuthState(out: string): AuthState {
  const state: AuthState = {enabled: false, users: new Map(), roles: new Map()}
  const parts = out.split(`${SECTION} `).slice(1)
  for (const part of parts) {
    const nl = part.indexOf('\n')
    const head = part.slice(0, nl === -1 ? undefined : nl).trim()
    const body = nl === -1 ? '' : part.slice(nl + 1).trim()
    const [kind, name] = head.split(' ')
    if (kind === 'probe') {
      if (/authentication failed|invalid user ID or password/.test(body)) state.enabled = true
      else if (body === '' || /authentication is not enabled/.test(body)) state.enabled = false
      else throw new Error(`cannot tell whether etcd authentication is on: ${body.split('\n').at(-1)}`)
    } else if (kind === 'user' || kind === 'role') {
      if (/(user|role) name not found/.test(body)) continue
      let j: {roles?: string[]; perm?: {permType?: number; key?: string; range_end?: string}[]}
      try {
        j = JSON.parse(body)
      } catch {
        throw new Error(`etcdctl ${kind} get ${name}: ${body}`)
      }

      if (kind === 'user') state.users.set(name, j.roles ?? [])
      else {
        state.roles.set(
          name,
          (j.perm ?? []).map((p) => {
            const key = Buffer.from(p.key ?? '', 'base64').toString('latin1')
            const end = p.range_end === undefined ? undefined : Buffer.from(p.range_end, 'base64').toString('latin1')
            return {type: PERM_TYPES[p.permType ?? 0], key, prefix: end !== undefined && end === prefixEnd(key)}
          }),
        )
      }
    }
  }

  return state
}

export interface AuthStep {
  /** What the change log says. */
  what: string
  /** etcdctl arguments. */
  args: string
}

/**
 * The etcdctl steps from `state` to `desired` (pure), in an order that is safe on a running
 * cluster: roles and users first, `auth enable` last, once every user exists (running flanneld
 * and kflan's own calls keep working across it). Empty when they already match.
 */
export function planAuth(desired: AuthModel, state: AuthState): AuthStep[] {
  const steps: AuthStep[] = []
  for (const [role, perms] of desired.roles) {
    const have = state.roles.get(role)
    if (!have) steps.push({what: `etcd auth: role add ${role}`, args: `role add ${shq(role)}`})
    const haveIds = new Set((have ?? []).map(permId))
    const wantIds = new Set(perms.map(permId))
    for (const p of have ?? []) {
      if (!wantIds.has(permId(p))) {
        steps.push({
          what: `etcd auth: revoke ${permId(p)} from role ${role}`,
          args: `role revoke-permission ${shq(role)} ${shq(p.key)}${p.prefix ? ' --prefix' : ''}`,
        })
      }
    }

    for (const p of perms) {
      if (!haveIds.has(permId(p))) {
        steps.push({
          what: `etcd auth: grant ${permId(p)} to role ${role}`,
          args: `role grant-permission ${shq(role)} ${p.type} ${shq(p.key)}${p.prefix ? ' --prefix' : ''}`,
        })
      }
    }
  }

  for (const [user, roles] of desired.users) {
    const have = state.users.get(user)
    if (!have)
      steps.push({
        what: `etcd auth: user add ${user} (certificate CN, no password)`,
        args: `user add ${shq(user)} --no-password`,
      })
    for (const r of roles)
      if (!have?.includes(r))
        steps.push({what: `etcd auth: grant role ${r} to user ${user}`, args: `user grant-role ${shq(user)} ${shq(r)}`})
    for (const r of have ?? [])
      if (!roles.includes(r))
        steps.push({
          what: `etcd auth: revoke role ${r} from user ${user}`,
          args: `user revoke-role ${shq(user)} ${shq(r)}`,
        })
  }

  if (!state.enabled)
    steps.push({what: 'etcd auth: auth enable (client certificates map to users by CN)', args: 'auth enable'})
  return steps
}
