/** Writes rendered files to a local directory (kflan render). */
import {mkdir, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import type {Cluster} from '../inventory/model.js'

import {networkConfig, type RenderContext, renderHost} from './index.js'

export async function writeRendered(
  c: Cluster,
  outDir: string,
  ctx: RenderContext,
): Promise<{hosts: number; files: number}> {
  let files = 0
  const put = async (path: string, content: string, mode: number) => {
    await mkdir(dirname(path), {recursive: true})
    await writeFile(path, content, {mode})
    files++
  }

  for (const h of c.hosts) {
    for (const f of renderHost(c, h, ctx)) await put(join(outDir, h.name, f.path), f.content, f.mode)
  }

  await put(join(outDir, '_etcd', c.flannel.prefix, 'config'), networkConfig(c) + '\n', 0o644)
  return {hosts: c.hosts.length, files}
}
