/**
 * files: backups restored, what kflan created deleted, edited text files given back without
 * kflan's edit, then (--purge-data) the etcd data, kflan's empty directories and /var/lib/kflan.
 */
import type {HostPhase} from '../../engine/context.js'
import type {ResetState} from '../state.js'

import {removeFiles} from '../../remote/file-remove.js'
import {writeFiles} from '../../remote/files.js'
import {shq} from '../../remote/shell.js'
import {statePaths} from '../../remote/state-dir.js'
import {describeFileOp} from '../file-ops.js'
import {hasFileWork} from '../plan.js'

export function filesPhase(state: ResetState): HostPhase {
  return {
    kind: 'hosts',
    name: 'files',
    title: "restore files and remove kflan's state",
    hosts: (ctx) => ctx.targets.filter((h) => hasFileWork(state.plan(h))),
    async runHost(ctx, h) {
      const p = state.plan(h)
      if (p.wants.length > 0) {
        await ctx.wet(h, `remove enable links without a unit: ${p.wants.join(', ')}`, () =>
          h.remote.run(`rm -f -- ${p.wants.map(shq).join(' ')}`),
        )
      }

      const simple = p.files.filter((o) => o.action !== 'rewrite')
      if (simple.length > 0) {
        const res = await ctx.wet(h, simple.map(describeFileOp), () =>
          removeFiles(
            h.remote,
            simple.map((o) => o.path),
          ),
        )
        for (const o of simple) {
          const got = res?.get(o.path)
          const want = {remove: 'removed', restore: 'restored', forget: 'absent', rewrite: ''}[o.action]
          if (got && got !== want && !(o.action === 'remove' && got === 'absent'))
            ctx.warn(h, `${o.path}: ${got} (expected ${want})`)
        }
      }

      for (const o of p.files.filter((x) => x.action === 'rewrite')) {
        await ctx.wet(h, describeFileOp(o), async () => {
          await writeFiles(h.remote, [{path: o.path, content: o.content!, mode: o.mode ?? 0o644}])
          await h.remote.run(`rm -f -- ${shq(`${statePaths().backup}${o.path}`)}`)
        })
      }

      if (p.daemonReload) {
        await ctx.wet(h, 'systemctl daemon-reload', () =>
          h.remote.run('systemctl daemon-reload && { systemctl reset-failed etcd flanneld 2>/dev/null || true; }'),
        )
      }

      if (p.purgeData) {
        await ctx.wet(h, `delete the etcd data directory ${p.purgeData}`, () =>
          h.remote.run(`rm -rf -- ${shq(p.purgeData!)}`),
        )
      }

      if (p.dirs.length > 0) {
        await ctx.wet(h, `remove kflan's directories once empty: ${p.dirs.join(', ')}`, () =>
          h.remote.run(`for d in ${p.dirs.map(shq).join(' ')}; do rmdir -- "$d" 2>/dev/null; done; true`),
        )
      }

      if (p.stateDir) {
        const sp = statePaths()
        const out = await ctx.wet(h, `clean ${sp.stateDir} (managed list, backups, tarball cache)`, () =>
          h.remote.run(
            [
              `cd / || exit 1`,
              `left=$( { [ -s ${shq(sp.managed)} ] && cat ${shq(sp.managed)}; [ -d ${shq(sp.backup)} ] && (cd ${shq(sp.backup)} && find . ! -type d | sed 's|^\\.||'); } 2>/dev/null )`,
              `if [ -z "$left" ]; then rm -rf -- ${shq(sp.stateDir)}; else rm -rf -- ${shq(sp.cache)} ${shq(sp.hashes)}; find ${shq(sp.backup)} -depth -type d -empty -delete 2>/dev/null; printf '%s\\n' "$left"; fi`,
            ].join('\n'),
          ),
        )
        const left = (out?.stdout ?? '').split('\n').filter(Boolean)
        if (left.length > 0) ctx.warn(h, `${sp.stateDir} kept: still lists ${left.join(', ')}`)
      }
    },
  }
}
