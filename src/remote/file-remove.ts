/**
 * Undoing kflan's writes (for reset): a file kflan created is deleted and dropped from the managed
 * list; a file it overwrote gets its backup back; anything else is kept.
 */
import type {WriteOptions} from './files.js'
import type {Remote} from './ssh.js'

import {statFiles} from './file-stat.js'
import {shq} from './shell.js'
import {remoteTempPath, statePaths} from './state-dir.js'

export type RemoveResult = 'removed' | 'restored' | 'absent' | 'kept'

/**
 * Undoes kflan's writes (for reset): a file kflan created is deleted (and dropped from the
 * managed list); a file it overwrote gets its backup back; anything else is kept.
 */
export async function removeFiles(
  remote: Remote,
  paths: string[],
  opts: WriteOptions = {},
): Promise<Map<string, RemoveResult>> {
  const out = new Map<string, RemoveResult>()
  if (paths.length === 0) return out
  const {managed: MANAGED_LIST, backup: BACKUP_DIR} = statePaths(opts.stateDir)
  const states = await statFiles(remote, paths, opts)
  const cmds: string[] = []
  for (const p of paths) {
    const st = states.get(p)!
    let r: RemoveResult
    if (st.hasBackup) {
      r = 'restored'
      cmds.push(`mv -f -- ${shq(`${BACKUP_DIR}${p}`)} ${shq(p)}`)
    } else if (st.managed) {
      r = st.exists ? 'removed' : 'absent'
      cmds.push(`rm -f -- ${shq(p)}`)
    } else r = st.exists ? 'kept' : 'absent'
    const tmp = remoteTempPath(MANAGED_LIST)
    if (st.managed)
      cmds.push(`{ grep -vxF -- ${shq(p)} ${MANAGED_LIST} > ${tmp} || true; } && mv -f ${tmp} ${MANAGED_LIST}`)
    out.set(p, r)
  }

  if (!opts.dryRun && cmds.length > 0) await remote.run(cmds.join(' && '))
  return out
}
