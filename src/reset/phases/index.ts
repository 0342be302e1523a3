/**
 * The phases of `kflan reset`, run by the same machinery as init (runSession: connect, listr2,
 * every change through ctx.wet so --dry-run only records it). Order matters across hosts:
 *
 *   inspect   facts + the plan of each host; with --host on an etcd member, the quorum check
 *   flanneld  stop and disable (docker keeps running: kflan's drop-in only Wants= flanneld)
 *   leases    delete the hosts' flannel leases while etcd still runs
 *   network   drop-in out, flannel's iptables / devices / runtime files out, docker started again
 *   members   --host --purge-data on an etcd member: `member remove` before its data goes
 *   etcd      stop and disable: followers at once, then the leader
 *   files     restore backups, delete what kflan created, --purge-data, clean /var/lib/kflan
 */
import type {Phase} from '../../engine/context.js'
import type {ResetState} from '../state.js'

import {etcdPhase} from './etcd.js'
import {filesPhase} from './files.js'
import {flanneldPhase} from './flanneld.js'
import {inspectPhase} from './inspect.js'
import {leasesPhase} from './leases.js'
import {membersPhase} from './members.js'
import {networkPhase} from './network.js'

export function resetPhases(state: ResetState): Phase[] {
  return [
    inspectPhase(state),
    flanneldPhase(state),
    leasesPhase(state),
    networkPhase(state),
    membersPhase(state),
    etcdPhase(state),
    filesPhase(state),
  ]
}
