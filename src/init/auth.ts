import type {ClusterPhase, HostRun, RunContext} from '../engine/context.js'

/**
 * auth: etcd v3 authentication with roles (least privilege; the model is src/cluster/etcd-auth.ts).
 * Reads users, roles and whether auth is on in one round trip through a running member, then
 * applies the missing steps in one more; `auth enable` comes last. A re-run reads and changes
 * nothing. Upgrading a cluster set up without roles is this same path.
 */
import {type AuthModel, authStateScript, desiredAuth, parseAuthState, planAuth} from '../cluster/etcd-auth.js'
import {etcdctl} from '../cluster/etcdctl.js'
import {KflanError, messageOf} from '../errors.js'

export const authPhase: ClusterPhase = {
  kind: 'cluster',
  name: 'auth',
  title: 'etcd roles (least privilege)',

  async runCluster(ctx) {
    const via = ctx.targets.find((h) => h.host.roles.etcd)
    if (!via) return
    if (ctx.cluster.flannel.etcdApi === 'v2') {
      ctx.warn(
        undefined,
        `flannel ${ctx.cluster.flannel.version} reads etcd through the v2 API, which etcd's v3 roles do not cover: any certificate of the cluster's CA can still write flannel's v2 keys. Use flannel >= 0.18 for a flanneld limited to ${ctx.cluster.flannel.prefix}`,
      )
    }

    const sync = () => syncAuth(ctx, via, desiredAuth(ctx.cluster))
    // An etcd this run starts cannot be asked for its users in a dry run: the plan says what comes.
    await (via.etcdActive
      ? sync()
      : ctx.wet(via, 'etcd auth: add users (one per certificate CN) and the flannel role, then auth enable', sync, {
          summary: true,
        }))
  },
}

/**
 * Makes etcd's users and roles match `model` through member `via`. With `enable: false` it only
 * adds what is missing and leaves auth as it is (a member joining a running cluster gets its user
 * before it starts, so kflan's calls through it work at once).
 */
export async function syncAuth(
  ctx: RunContext,
  via: HostRun,
  model: AuthModel,
  opts: {enable?: boolean; endpoints?: HostRun[]} = {},
): Promise<void> {
  const c = ctx.cluster
  const ctl = (args: string) =>
    etcdctl(
      c,
      args,
      opts.endpoints?.map((x) => x.host),
    )
  const read = await via.remote.run(authStateScript(model, ctl))
  let state
  try {
    state = parseAuthState(read.stdout)
  } catch (error) {
    throw new KflanError(`reading etcd's users and roles through ${via.host.name}: ${messageOf(error)}`, {
      hint: 'check that the cluster is healthy (`kflan doctor`)',
    })
  }

  const steps = planAuth(model, state).filter((s) => opts.enable !== false || s.args !== 'auth enable')
  if (steps.length === 0) return
  await ctx.wet(
    via,
    steps.map((s) => s.what),
    () => via.remote.run(steps.map((s) => ctl(s.args)).join(' && ')),
  )
}
