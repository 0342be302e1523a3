/** The phases of `kflan init`, in order. */
import type {Phase} from '../engine/context.js'

import {authPhase} from './auth.js'
import {binariesPhase} from './binaries.js'
import {certificatesPhase} from './certificates.js'
import {dockerPhase} from './docker.js'
import {etcdPhase} from './etcd.js'
import {flannelPhase} from './flannel.js'
import {networkPhase} from './network.js'
import {preflightPhase} from './preflight.js'

export const initPhases: Phase[] = [
  preflightPhase,
  binariesPhase,
  certificatesPhase,
  etcdPhase,
  authPhase,
  networkPhase,
  flannelPhase,
  dockerPhase,
]

/** `kflan join node`: everything a node needs, nothing for etcd or the network config. */
export const joinPhases: Phase[] = [preflightPhase, binariesPhase, certificatesPhase, flannelPhase, dockerPhase]
