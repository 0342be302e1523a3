/** Interrupts, the state-dir lock, journal excerpts and etcd roles: the pure parts. */
import {describe, expect, it} from 'vitest'
import {journalExcerpt} from '../../src/remote/journal.js'

describe('journal excerpts for failed services', () => {
  it('quotes the lines that say why, zap JSON shortened to msg and error', () => {
    const text = [
      '{"level":"info","ts":"2026-12-01T16:00:00Z","caller":"embed/etcd.go:1","msg":"configuring peer listeners"}',
      '{"level":"fatal","ts":"2026-12-01T16:00:01Z","caller":"etcdmain/etcd.go:204","msg":"discovery failed","error":"open /var/lib/etcd/member/snap/db: no space left on device"}',
      'etcd.service: Main process exited, code=exited, status=1/FAILURE',
      'etcd.service: Failed with result \'exit-code\'.',
    ].join('\n')
    const out = journalExcerpt(text)
    expect(out[0]).toBe('fatal: discovery failed: open /var/lib/etcd/member/snap/db: no space left on device')
    expect(out).toEqual([out[0], "etcd.service: Failed with result \'exit-code\'."])
    expect(out.join('\n')).not.toContain('configuring peer listeners')
  })

  it('keeps capnslog text lines and falls back to the last lines when none looks like a failure', () => {
    expect(journalExcerpt('a\netcdmain: cannot access data directory: mkdir /var/lib/etcd: permission denied\nb\n')).toEqual([
      'etcdmain: cannot access data directory: mkdir /var/lib/etcd: permission denied',
    ])
    expect(journalExcerpt('one\ntwo\nthree\n', 2)).toEqual(['two', 'three'])
    expect(journalExcerpt('-- No entries --\n')).toEqual([])
  })
})
