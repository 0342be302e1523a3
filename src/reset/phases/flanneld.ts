/** flanneld: stopped and disabled first (docker keeps running: kflan's drop-in only Wants= flanneld). */
import type {HostPhase} from '../../engine/context.js'
import type {ResetState} from '../state.js'

export function flanneldPhase(state: ResetState): HostPhase {
  return {
    kind: 'hosts',
    name: 'flanneld',
    title: 'stop flanneld',
    hosts: (ctx) => ctx.targets.filter((h) => state.plan(h).flanneld),
    async runHost(ctx, h) {
      await ctx.wet(h, 'stop and disable flanneld', () =>
        h.remote.run('systemctl disable --now flanneld && { systemctl reset-failed flanneld 2>/dev/null || true; }', {
          timeoutMs: 120_000,
        }),
      )
    },
  }
}
