import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {changedBytes, isSecretPath, looksBinary, renderChange, unifiedDiff} from '../../src/remote/diff.js'

let dir: string
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'kflan-diff-'))
})
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** Applies our diff with GNU patch and returns the result. */
function applyWithPatch(oldText: string, diff: string): string {
  const f = path.join(dir, 'file')
  writeFileSync(f, oldText)
  writeFileSync(path.join(dir, 'p.diff'), diff)
  execFileSync('patch', ['-s', '-f', f, path.join(dir, 'p.diff')], {stdio: 'pipe'})
  return readFileSync(f, 'utf8')
}

// Deterministic pseudo-random text edits.
function rng(seed: number) {
  let s = seed
  return () => {
    s = (s * 1_103_515_245 + 12_345) & 0x7f_ff_ff_ff
    return s / 0x7f_ff_ff_ff
  }
}

function mutate(lines: string[], r: () => number): string[] {
  const out = [...lines]
  const n = 1 + Math.floor(r() * 6)
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (out.length + 1))
    const op = r()
    if (op < 0.33 && out.length > 0) out.splice(at, 1)
    else if (op < 0.66) out.splice(at, 0, `new ${Math.floor(r() * 1000)}`)
    else if (out.length > 0) out[Math.min(at, out.length - 1)] = `changed ${Math.floor(r() * 1000)}`
  }

  return out
}

describe('unified diff', () => {
  it('is empty for equal texts', () => {
    expect(unifiedDiff('a\n', 'a\n', 'a', 'b')).toBe('')
  })

  it('renders a simple change with context like diff -u', () => {
    const a = 'one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\n'
    const b = 'one\ntwo\nthree\nFOUR\nfive\nsix\nseven\neight\n'
    expect(unifiedDiff(a, b, 'a/x', 'b/x')).toBe(
      [
        '--- a/x',
        '+++ b/x',
        '@@ -1,7 +1,7 @@',
        ' one',
        ' two',
        ' three',
        '-four',
        '+FOUR',
        ' five',
        ' six',
        ' seven',
        '',
      ].join('\n'),
    )
  })

  it('handles creation, deletion and missing final newlines', () => {
    expect(unifiedDiff('', 'a\nb\n', '/dev/null', 'b/x')).toBe('--- /dev/null\n+++ b/x\n@@ -0,0 +1,2 @@\n+a\n+b\n')
    const d = unifiedDiff('a\nb', 'a\nb\n', 'a/x', 'b/x')
    expect(d).toContain('-b\n\\ No newline at end of file\n+b\n')
    expect(applyWithPatch('a\nb', d)).toBe('a\nb\n')
  })

  it('produces diffs that GNU patch applies, over many random edits', () => {
    const r = rng(42)
    const base = Array.from({length: 40}, (_, i) => `line ${i}`)
    for (let i = 0; i < 60; i++) {
      const a = mutate(base, r)
      const b = mutate(a, r)
      const at = `${a.join('\n')}\n`
      const bt = `${b.join('\n')}\n`
      const d = unifiedDiff(at, bt, 'a/f', 'b/f')
      if (at === bt) continue
      expect(applyWithPatch(at, d)).toBe(bt)
      // Same number of hunks as GNU diff.
      let gnu = ''
      writeFileSync(path.join(dir, 'a'), at)
      writeFileSync(path.join(dir, 'b'), bt)
      try {
        execFileSync('diff', ['-u', path.join(dir, 'a'), path.join(dir, 'b')], {encoding: 'utf8'})
      } catch (error) {
        gnu = (error as {stdout: string}).stdout
      }

      expect(d.match(/^@@/gm)?.length).toBe(gnu.match(/^@@/gm)?.length)
    }
  })
})

describe('plan rendering', () => {
  it('never shows secret content', () => {
    const out = renderChange({
      path: '/etc/etcd/ssl/server-key.pem',
      old: Buffer.from('OLD-PRIVATE-KEY'),
      next: Buffer.from('NEW-PRIVATE-KEY'),
      secret: true,
    })
    expect(out).toContain('(secret, 3 bytes changed)')
    expect(out).not.toContain('PRIVATE')
    const created = renderChange({path: '/etc/k-key.pem', next: Buffer.from('SECRET-CONTENT'), secret: true})
    expect(created).toContain('--- /dev/null')
    expect(created).toContain('(secret, 14 bytes changed)')
    expect(created).not.toContain('SECRET-CONTENT')
  })

  it('summarizes binaries and reports mode and owner changes', () => {
    expect(renderChange({path: '/bin/x', old: Buffer.from([0, 1]), next: Buffer.from([0, 2, 3])})).toContain(
      '(binary, 2 → 3 bytes)',
    )
    const sameContent = Buffer.from('x\n')
    expect(renderChange({path: '/f', old: sameContent, next: sameContent, oldMode: 0o644, newMode: 0o600})).toBe(
      'mode 0644 → 0600 /f\n',
    )
    expect(
      renderChange({
        path: '/f',
        old: sameContent,
        next: sameContent,
        oldOwner: 'a:a',
        newOwner: 'root:root',
        oldMode: 0o644,
        newMode: 0o644,
      }),
    ).toBe('owner a:a → root:root /f\n')
    expect(renderChange({path: '/f', old: sameContent, next: sameContent, oldMode: 0o644, newMode: 0o644})).toBe('')
  })

  it('uses the old sha256 when the old content was not fetched', () => {
    const next = Buffer.from('abc')
    const sha = '(sha of abc)'
    expect(renderChange({path: '/k.key', oldExists: true, oldSha256: sha, next, secret: true})).toContain('a/k.key')
  })

  it('recognizes secret paths and binaries', () => {
    expect(isSecretPath('/etc/etcd/ssl/peer-key.pem')).toBe(true)
    expect(isSecretPath('/etc/etcd/ssl/peer.pem')).toBe(false)
    expect(isSecretPath('/etc/x/server.key')).toBe(true)
    expect(looksBinary(Buffer.from('plain text\n'))).toBe(false)
    expect(looksBinary(Buffer.from([0xff, 0xfe, 0x41]))).toBe(true)
    expect(changedBytes(Buffer.from('abcd'), Buffer.from('abXdef'))).toBe(3)
  })
})
