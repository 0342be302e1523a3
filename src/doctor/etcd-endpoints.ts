import {parseEtcdJson} from '../cluster/etcdctl.js'
/**
 * Every etcd member's endpoint as doctor saw it (pure): health and status from the member's own
 * view, or from another member's when it could not be reached over SSH; the quorum rule. Moved
 * whole from doctor/etcd.ts.
 */
import {clientUrl, etcdMembers, type Host} from '../inventory/model.js'
import {etcdctlError, specificError} from './etcd-output.js'
import {type DoctorInput, stateOf, withData} from './types.js'

export interface EndpointState {
  member: Host
  /** undefined: nobody could ask. */
  healthy?: boolean
  error?: string
  /** Which host asked. */
  seenFrom?: string
  status?: {memberId?: string; leader?: string; raftTerm?: number; dbSize?: number; version?: string; errors: string[]}
}

interface HealthJson {
  endpoint: string
  health: boolean
  error?: string
  took?: string
}

interface StatusJson {
  Endpoint: string
  Status: {
    header?: {member_id?: string}
    leader?: string
    raftTerm?: number
    dbSize?: number
    version?: string
    errors?: string[]
  }
}

/** Every member's endpoint, from its own view if it has one, else from another member's. */
export function endpointStates(input: DoctorInput): EndpointState[] {
  const c = input.cluster
  return etcdMembers(c).map((m) => {
    const own = stateOf(input, m.name)?.data?.etcd?.endpoints[m.name]
    const other = own ? undefined : withData(input).find((s) => s.data.etcd?.endpoints[m.name])
    const view = own ?? other?.data.etcd?.endpoints[m.name]
    if (!view) return {member: m}
    const url = clientUrl(c, m)
    const h = (parseEtcdJson<HealthJson[]>(view.health.stdout) ?? []).find((x) => x.endpoint === url)
    const healthy = h?.health === true
    const st = (parseEtcdJson<StatusJson[]>(view.status.stdout) ?? []).find((x) => x.Endpoint === url)?.Status
    return {
      member: m,
      healthy,
      // `endpoint health` says only "context deadline exceeded"; `endpoint status` logs the cause.
      error: healthy
        ? undefined
        : (specificError(view.health) ?? specificError(view.status) ?? etcdctlError(view.health, h?.error)),
      seenFrom: own ? m.name : other?.host.name,
      status: st
        ? {
            memberId: st.header?.member_id,
            leader: st.leader && st.leader !== '0' ? st.leader : undefined,
            raftTerm: st.raftTerm,
            dbSize: st.dbSize,
            version: st.version,
            errors: st.errors ?? [],
          }
        : undefined,
    }
  })
}
