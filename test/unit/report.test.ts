import {describe, expect, it} from 'vitest'

import {changeList, formatSummary, summarize} from '../../src/cli/report.js'
import {HostFailure, RunContext} from '../../src/engine/context.js'
import {PhaseFailedError} from '../../src/engine/runner.js'
import {newHostRun} from '../../src/engine/session.js'
import {exampleCluster} from './helpers.js'

const silent = {log() {}}

function runContext(changes: Record<string, string[]>, opts: {dryRun?: boolean} = {}) {
  const c = exampleCluster('example')
  const ctx = new RunContext(
    c,
    '/tmp/state',
    c.hosts.map(newHostRun),
    {dryRun: opts.dryRun ?? false, force: false, ignorePreflight: new Set(), concurrency: 4},
    silent,
  )
  for (const h of ctx.hosts) h.changes.push(...(changes[h.host.name] ?? []))
  return ctx
}

describe('the end-of-run summary', () => {
  it('counts hosts changed and unchanged, and service (re)starts', () => {
    const ctx = runContext({
      master01: ['created /opt/etcd/cfg/etcd.conf', 'systemctl enable etcd', 'start etcd'],
      node01: ['restart docker (drop-in changed)', 'restart flanneld'],
    })
    const s = summarize(ctx, {
      command: 'init',
      durationMs: 7412,
      log: '/s/logs/init.log',
      next: 'kflan doctor -i inv.yaml',
    })
    expect(s.hosts).toEqual({changed: ['master01', 'node01'], unchanged: ['node02'], failed: []})
    expect(s.restarts).toBe(3)
    expect(formatSummary(s, {nothing: 'nothing changed'})).toBe(
      [
        'init: done in 7.4 s. 3 hosts: 2 changed, 1 unchanged; 3 service (re)starts.',
        '  changed: master01 (3), node01 (2)',
        'next: kflan doctor -i inv.yaml',
        'log: /s/logs/init.log',
      ].join('\n'),
    )
  })

  it('says so in one line when nothing changed', () => {
    const s = summarize(runContext({}), {command: 'init', durationMs: 1400, log: 'l', next: 'kflan doctor -i x'})
    expect(formatSummary(s, {nothing: 'nothing changed: the cluster already matches the inventory'})).toBe(
      'nothing changed: the cluster already matches the inventory (3 hosts, 1.4 s)\nnext: kflan doctor -i x\nlog: l',
    )
  })

  it('names the failed hosts from the phase failure and keeps them out of changed', () => {
    const ctx = runContext({master01: ['start etcd'], node01: ['created /etc/x']})
    const error = new PhaseFailedError('docker', [
      new HostFailure('node01', 'docker', new Error('boom')),
      new HostFailure('cluster', 'docker', new Error('x')),
    ])
    const s = summarize(ctx, {command: 'init', durationMs: 12_300, log: 'l', error})
    expect(s.ok).toBe(false)
    expect(s.hosts).toEqual({changed: ['master01'], unchanged: ['node02'], failed: ['node01']})
    expect(s.error?.message).toMatch(/failed on 2 hosts in phase docker/)
    expect(formatSummary(s, {nothing: '-'}).split('\n')[0]).toBe(
      'init: FAILED after 12 s. 3 hosts: 1 changed, 1 unchanged, 1 failed; 1 service (re)start.',
    )
  })

  it('a dry run says what would change, and the change list carries the diffs', () => {
    const ctx = runContext({node02: ['would write /etc/a']}, {dryRun: true})
    const s = summarize(ctx, {command: 'init', durationMs: 900, log: 'l'})
    expect(formatSummary(s, {nothing: '-'}).split('\n').slice(0, 2)).toEqual([
      'init --dry-run: 0.9 s, nothing was changed. 3 hosts: 1 would change, 2 unchanged; 0 service (re)starts planned.',
      '  would change: node02 (1)',
    ])
    expect(changeList(s, {diffs: new Map([['node02', ['--- a\n+++ b']]])})).toBe(
      'node02: would change 1\n  - would write /etc/a\n    --- a\n    +++ b',
    )
  })

  it('lists at most eight hosts by name', () => {
    const ctx = runContext({})
    const s = summarize(ctx, {command: 'init', durationMs: 1, log: 'l'})
    s.hosts.changed = Array.from({length: 12}, (_, i) => `n${i}`)
    expect(formatSummary(s, {nothing: '-'})).toContain('  changed: n0, n1, n2, n3, n4, n5, n6, n7 and 4 more')
  })
})
