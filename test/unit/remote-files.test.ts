/**
 * The remote file scripts, run for real by a local `sh` through a stand-in for Remote, under a
 * temp dir: atomic writes, skip on matching sha256, backups, managed list, dry run, tarball
 * installs. No SSH involved; the e2e test runs the same code against lab hosts.
 */
import {execFileSync, spawn} from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {ExecOptions, ExecResult, Remote} from '../../src/remote/ssh.js'

import {RemoteCommandError} from '../../src/remote/errors.js'
import {removeFiles} from '../../src/remote/file-remove.js'
import {parseStatOutput, planFile, type RemoteFileState, statFiles} from '../../src/remote/file-stat.js'
import {readRemoteFile, writeFile, writeFiles} from '../../src/remote/files.js'
import {checkRemotePath, remoteTempPath, RUN_ID} from '../../src/remote/state-dir.js'
import {findMember, listTar, listTarball} from '../../src/remote/tarball.js'
import {installFromTarball, uploadFile} from '../../src/remote/upload.js'

let root: string
let stateDir: string

/** Runs commands with the local sh, as Remote.run would on a host (we are root here). */
class LocalRemote {
  name = 'local'
  mode = 'root' as const
  commands: string[] = []

  async exec(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.commands.push(cmd)
    const t0 = Date.now()
    const child = spawn('sh', ['-c', cmd], {stdio: ['pipe', 'pipe', 'pipe']})
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d) => out.push(d))
    child.stderr.on('data', (d) => err.push(d))
    const input = opts.stdin
    if (input === undefined) child.stdin.end()
    else if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input)
    else (input as Readable).pipe(child.stdin)
    const code = await new Promise<number | null>((r) => {
      child.on('close', r)
    })
    return {
      code,
      stdout: Buffer.concat(out).toString(),
      stderr: Buffer.concat(err).toString(),
      durationMs: Date.now() - t0,
    }
  }

  async run(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.exec(cmd, opts)
    if (r.code === null || !(opts.okCodes ?? [0]).includes(r.code))
      throw new RemoteCommandError({host: this.name, command: cmd, code: r.code, stderr: r.stderr})
    return r
  }

  note() {}
}
const local = new LocalRemote()
const remote = local as unknown as Remote
const opts = () => ({stateDir})
const p = (rel: string) => path.join(root, rel)
const mode = (f: string) => statSync(f).mode & 0o7777
const sha = (f: string) => execFileSync('sha256sum', [f], {encoding: 'utf8'}).slice(0, 64)

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'kflan-files-'))
  stateDir = p('var/lib/kflan')
})
afterAll(() => rmSync(root, {recursive: true, force: true}))

describe('paths', () => {
  it('refuses paths the scripts cannot carry', () => {
    for (const bad of ['rel/x', '/a/../b', '/a\nb', '/a\tb', String.raw`/a\b`, '/dir/'])
      expect(() => checkRemotePath(bad)).toThrow()
    expect(() => checkRemotePath("/etc/it's fine.conf")).not.toThrow()
  })
})

describe('stat in one round trip', () => {
  it('reports sha256, mode, owner, size, managed and backup for many files', async () => {
    mkdirSync(p('s'), {recursive: true})
    writeFileSync(p('s/a'), 'hello\n')
    chmodSync(p('s/a'), 0o640)
    mkdirSync(p('s/dir'))
    const before = local.commands.length
    const m = await statFiles(remote, [p('s/a'), p('s/missing'), p('s/dir'), p("s/it's")], opts())
    expect(local.commands.length - before).toBe(1)
    expect(m.get(p('s/a'))).toMatchObject({
      exists: true,
      regular: true,
      sha256: sha(p('s/a')),
      mode: 0o640,
      owner: 'root:root',
      size: 6,
      managed: false,
      hasBackup: false,
    })
    expect(m.get(p('s/missing'))).toMatchObject({exists: false, regular: false})
    expect(m.get(p('s/dir'))).toMatchObject({exists: true, regular: false})
    expect(m.get(p("s/it's"))).toMatchObject({exists: false})
  })

  it('parses stat output', () => {
    const m = parseStatOutput(`F\t/x\t${'a'.repeat(64)}\t600\troot:root\t12\tM\tB\nN\t/y\t-\t-\n`)
    expect(m.get('/x')).toEqual({
      path: '/x',
      exists: true,
      regular: true,
      sha256: 'a'.repeat(64),
      mode: 0o600,
      owner: 'root:root',
      size: 12,
      managed: true,
      hasBackup: true,
    })
    expect(m.get('/y')).toEqual({path: '/y', exists: false, regular: false, managed: false, hasBackup: false})
  })
})

describe('planning (pure)', () => {
  const st = (o: Partial<RemoteFileState>): RemoteFileState => ({
    path: '/f',
    exists: true,
    regular: true,
    managed: false,
    hasBackup: false,
    ...o,
  })
  const spec = {path: '/f', content: 'x\n', mode: 0o644}
  const xsha = '2a2d6a8c4bc0e0b2b5f05b0b4f2e3b4b0e8d0b3d5a3c8e7b8e5f8c1c5a3b2d1e' // not the real sha

  it('created / unchanged / updated / mode-only', () => {
    expect(planFile(spec, st({exists: false, regular: false})).result).toBe('created')
    const realSha = execFileSync('sha256sum', {input: 'x\n', encoding: 'utf8'}).slice(0, 64)
    expect(planFile(spec, st({sha256: realSha, mode: 0o644})).result).toBe('unchanged')
    expect(planFile(spec, st({sha256: realSha, mode: 0o600}))).toMatchObject({
      result: 'updated',
      contentChanged: false,
      modeChanged: true,
    })
    expect(planFile({...spec, owner: 'root:root'}, st({sha256: realSha, mode: 0o644, owner: 'a:b'}))).toMatchObject({
      result: 'updated',
      ownerChanged: true,
    })
    expect(planFile(spec, st({sha256: xsha, mode: 0o644}))).toMatchObject({
      result: 'updated',
      contentChanged: true,
      backup: '/var/lib/kflan/backup/f',
    })
    expect(planFile(spec, st({sha256: xsha, mode: 0o644, managed: true})).backup).toBeUndefined()
    expect(() => planFile(spec, st({regular: false}))).toThrow(/not a regular file/)
  })
})

describe('atomic writes', () => {
  it('created → unchanged → updated, with modes, owner and the managed list', async () => {
    const f = p('etc/kflan-test/new.conf')
    expect(await writeFile(remote, {path: f, content: 'a=1\n', mode: 0o640, owner: 'root:root'}, opts())).toBe(
      'created',
    )
    expect(readFileSync(f, 'utf8')).toBe('a=1\n')
    expect(mode(f)).toBe(0o640)
    // Parent directories are created 0755, not with the private umask of the temp file.
    expect(mode(path.dirname(f))).toBe(0o755)
    expect(readFileSync(`${stateDir}/managed`, 'utf8').split('\n')).toContain(f)

    const n = local.commands.length
    expect(await writeFile(remote, {path: f, content: 'a=1\n', mode: 0o640, owner: 'root:root'}, opts())).toBe(
      'unchanged',
    )
    expect(local.commands.length - n).toBe(1) // one round trip, no write

    expect(await writeFile(remote, {path: f, content: 'a=1\n', mode: 0o600}, opts())).toBe('updated')
    expect(mode(f)).toBe(0o600)
    expect(await writeFile(remote, {path: f, content: Buffer.from('a=2\n'), mode: 0o600}, opts())).toBe('updated')
    expect(readFileSync(f, 'utf8')).toBe('a=2\n')
    // kflan created it: no backup of its own file.
    expect(existsSync(`${stateDir}/backup${f}`)).toBe(false)
    // No temp files left behind.
    expect(readdirSync(path.dirname(f))).toEqual(['new.conf'])
    // Listed once.
    expect(
      readFileSync(`${stateDir}/managed`, 'utf8')
        .split('\n')
        .filter((l) => l === f),
    ).toHaveLength(1)
  })

  it('backs up a pre-existing file kflan did not create, once (the original)', async () => {
    const f = p('etc/vendor.conf')
    writeFileSync(f, 'vendor original\n')
    chmodSync(f, 0o644)
    const [c] = await writeFiles(remote, [{path: f, content: 'kflan 1\n', mode: 0o644}], opts())
    expect(c).toMatchObject({result: 'updated', backup: `${stateDir}/backup${f}`})
    expect(readFileSync(`${stateDir}/backup${f}`, 'utf8')).toBe('vendor original\n')
    expect(mode(`${stateDir}/backup`)).toBe(0o700)
    await writeFiles(remote, [{path: f, content: 'kflan 2\n', mode: 0o644}], opts())
    expect(readFileSync(f, 'utf8')).toBe('kflan 2\n')
    expect(readFileSync(`${stateDir}/backup${f}`, 'utf8')).toBe('vendor original\n')
    expect(readFileSync(`${stateDir}/managed`, 'utf8').split('\n')).not.toContain(f)
  })

  it('writes a batch in one round trip after one stat; binary and empty content survive', async () => {
    const bin = Buffer.from(Array.from({length: 3000}, (_, i) => (i * 7) % 256))
    const specs = [
      {path: p('batch/a'), content: 'A\n', mode: 0o644},
      {path: p('batch/sub/b.bin'), content: bin, mode: 0o755},
      {path: p('batch/empty'), content: '', mode: 0o600},
      {path: p('batch/KFLAN_EOF_x'), content: 'KFLAN_EOF_x\nline\n', mode: 0o644},
    ]
    const n = local.commands.length
    const res = await writeFiles(remote, specs, opts())
    expect(local.commands.length - n).toBe(2)
    expect(res.map((r) => r.result)).toEqual(['created', 'created', 'created', 'created'])
    expect(readFileSync(p('batch/sub/b.bin')).equals(bin)).toBe(true)
    expect(readFileSync(p('batch/empty'), 'utf8')).toBe('')
    expect(readFileSync(p('batch/KFLAN_EOF_x'), 'utf8')).toBe('KFLAN_EOF_x\nline\n')
    expect(mode(p('batch/sub/b.bin'))).toBe(0o755)
    const again = await writeFiles(remote, specs, opts())
    expect(again.map((r) => r.result)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged'])
    await expect(writeFiles(remote, [specs[0], specs[0]], opts())).rejects.toThrow(/twice/)
  })

  it('dry run writes nothing and renders diffs; secrets are summarized', async () => {
    const conf = p('dry/etcd.conf')
    const key = p('dry/server-key.pem')
    mkdirSync(p('dry'))
    writeFileSync(conf, 'name=a\nport=1\n')
    writeFileSync(key, 'OLD KEY MATERIAL\n')
    const before = [sha(conf), sha(key)]
    const res = await writeFiles(
      remote,
      [
        {path: conf, content: 'name=a\nport=2\n', mode: 0o644},
        {path: key, content: 'NEW KEY MATERIAL\n', mode: 0o600},
        {path: p('dry/new'), content: 'fresh\n', mode: 0o644},
      ],
      {...opts(), dryRun: true},
    )
    expect([sha(conf), sha(key)]).toEqual(before)
    expect(existsSync(p('dry/new'))).toBe(false)
    expect(existsSync(`${stateDir}/backup${conf}`)).toBe(false)
    expect(res.map((r) => r.result)).toEqual(['updated', 'updated', 'created'])
    expect(res[0].diff).toBe(`--- a${conf}\n+++ b${conf}\n@@ -1,2 +1,2 @@\n name=a\n-port=1\n+port=2\n`)
    expect(res[1].diff).toContain('(secret, 17 bytes changed)')
    expect(res[1].diff).not.toContain('KEY MATERIAL')
    expect(res[1].diff).toContain('mode 0644 → 0600')
    expect(res[2].diff).toContain('--- /dev/null')
    expect(res[2].diff).toContain('+fresh')
  })

  it('reads remote files and undoes writes (remove / restore)', async () => {
    const created = p('etc/kflan-test/new.conf')
    const vendor = p('etc/vendor.conf')
    expect((await readRemoteFile(remote, vendor))?.toString()).toBe('kflan 2\n')
    expect(await readRemoteFile(remote, p('nope'))).toBeUndefined()
    const dry = await removeFiles(remote, [created, vendor, p('nope')], {...opts(), dryRun: true})
    expect(Object.fromEntries(dry)).toEqual({[created]: 'removed', [vendor]: 'restored', [p('nope')]: 'absent'})
    expect(existsSync(created)).toBe(true)
    await removeFiles(remote, [created, vendor], opts())
    expect(existsSync(created)).toBe(false)
    expect(readFileSync(vendor, 'utf8')).toBe('vendor original\n')
    expect(readFileSync(`${stateDir}/managed`, 'utf8').split('\n')).not.toContain(created)
  })
})

describe('tarballs', () => {
  let tgz: string
  const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/tool`
  beforeAll(() => {
    const src = p('tarsrc')
    mkdirSync(path.join(src, 'etcd-v3.5.17-linux-amd64'), {recursive: true})
    mkdirSync(path.join(src, path.dirname(long)), {recursive: true})
    writeFileSync(path.join(src, 'etcd-v3.5.17-linux-amd64/etcd'), '#!/bin/sh\necho etcd 3.5.17\n')
    writeFileSync(path.join(src, 'etcd-v3.5.17-linux-amd64/etcdctl'), '#!/bin/sh\necho etcdctl\n')
    writeFileSync(path.join(src, 'etcd-v3.5.17-linux-amd64/README.md'), 'readme\n')
    writeFileSync(path.join(src, long), 'long name\n')
    tgz = p('etcd.tar.gz')
    execFileSync('tar', ['-czf', tgz, '-C', src, 'etcd-v3.5.17-linux-amd64', long.split('/')[0]])
  })

  it('lists members with sha256, including GNU long names', async () => {
    const m = await listTarball(tgz)
    const etcd = findMember(m, 'etcd')
    expect(etcd.name).toBe('etcd-v3.5.17-linux-amd64/etcd')
    expect(etcd.sha256).toBe(sha(p('tarsrc/etcd-v3.5.17-linux-amd64/etcd')))
    expect(findMember(m, 'tool').name).toBe(long)
    expect(() => findMember(m, 'nope')).toThrow(/no member/)
    const plain = p('plain.tar')
    execFileSync('tar', ['--format=pax', '-cf', plain, '-C', p('tarsrc'), long])
    expect(listTar(readFileSync(plain)).map((x) => x.name)).toContain(long)
  })

  it('installs binaries atomically, skipping those that match, with one round trip when converged', async () => {
    const bin = p('usr/local/bin')
    mkdirSync(bin, {recursive: true})
    writeFileSync(path.join(bin, 'etcdctl'), 'distro etcdctl\n')
    const members = [
      {member: 'etcd', dest: path.join(bin, 'etcd')},
      {member: 'etcdctl', dest: path.join(bin, 'etcdctl')},
    ]
    const dry = await installFromTarball(remote, tgz, members, {...opts(), dryRun: true})
    expect(dry.results.map((r) => r.result)).toEqual(['created', 'updated'])
    expect(existsSync(path.join(bin, 'etcd'))).toBe(false)

    const r1 = await installFromTarball(remote, tgz, members, opts())
    expect(r1.results.map((r) => r.result)).toEqual(['created', 'updated'])
    expect(r1.upload?.result).toBe('uploaded')
    expect(execFileSync(path.join(bin, 'etcd'), {encoding: 'utf8'})).toBe('etcd 3.5.17\n')
    expect(mode(path.join(bin, 'etcd'))).toBe(0o755)
    expect(readFileSync(`${stateDir}/backup${bin}/etcdctl`, 'utf8')).toBe('distro etcdctl\n')
    expect(readdirSync(`${stateDir}/cache`).filter((f) => f.startsWith('extract'))).toEqual([])

    const n = local.commands.length
    const r2 = await installFromTarball(remote, tgz, members, opts())
    expect(r2.results.map((r) => r.result)).toEqual(['unchanged', 'unchanged'])
    expect(local.commands.length - n).toBe(1)

    // A tampered binary is replaced from the cache without uploading again.
    writeFileSync(path.join(bin, 'etcd'), 'tampered\n')
    const r3 = await installFromTarball(remote, tgz, members, opts())
    expect(r3.results.map((r) => r.result)).toEqual(['updated', 'unchanged'])
    expect(r3.upload?.result).toBe('unchanged')
    expect(execFileSync(path.join(bin, 'etcd'), {encoding: 'utf8'})).toBe('etcd 3.5.17\n')
  })

  it('uploads via stdin, verified, and skips when the checksum matches', async () => {
    const dest = p('cache2/blob.tar.gz')
    const a = await uploadFile(remote, tgz, dest, {...opts(), mode: 0o600})
    expect(a.result).toBe('uploaded')
    expect(sha(dest)).toBe(a.sha256)
    expect(mode(dest)).toBe(0o600)
    const b = await uploadFile(remote, tgz, dest, {...opts(), mode: 0o600})
    expect(b.result).toBe('unchanged')
  })
})

describe('remote temporary files are unique to the run', () => {
  it('names every temp file after this run, never a fixed .new or a quoted $$', async () => {
    expect(RUN_ID).toMatch(/^[0-9a-f]{12}$/)
    expect(remoteTempPath('/opt/etcd/bin/etcd')).toBe(`/opt/etcd/bin/.kflan-tmp.${RUN_ID}.etcd`)
    expect(remoteTempPath('/a/b', 'abc')).toBe('/a/.kflan-tmp.abc.b')
    const src = p('tmpnames')
    mkdirSync(path.join(src, 'pkg'), {recursive: true})
    writeFileSync(path.join(src, 'pkg/tool'), 'tool v1\n')
    const tgz = p('tmpnames.tar.gz')
    execFileSync('tar', ['-czf', tgz, '-C', src, 'pkg'])
    const dest = p('tmpnames-bin/tool')
    const file = p('tmpnames-etc/conf')
    local.commands = []
    await installFromTarball(remote, tgz, [{member: 'tool', dest}], opts())
    await writeFiles(remote, [{path: file, content: 'x\n', mode: 0o644}], opts())
    await removeFiles(remote, [file], opts())
    // Scripts go on stdin ('sh -s'); what LocalRemote records is the command, so look at both.
    const seen = local.commands.join('\n')
    expect(seen).not.toMatch(/\.new\b/)
    expect(seen).not.toContain("'$$'")
    // Nothing left behind, and the installed file is in place.
    expect(readFileSync(dest, 'utf8')).toBe('tool v1\n')
    expect(readdirSync(path.dirname(dest)).filter((f) => f.startsWith('.kflan-tmp'))).toEqual([])
  })

  it('puts the run id into the scripts sent on stdin', async () => {
    const scripts: string[] = []
    const spy = {
      ...local,
      name: 'spy',
      mode: 'root' as const,
      exec(cmd: string, o: ExecOptions = {}) {
        if (typeof o.stdin === 'string') scripts.push(o.stdin)
        return local.exec(cmd, o)
      },
      async run(cmd: string, o: ExecOptions = {}) {
        if (typeof o.stdin === 'string') scripts.push(o.stdin)
        return local.run(cmd, o)
      },
      note() {},
    } as unknown as Remote
    const src = p('tmpnames2')
    mkdirSync(path.join(src, 'pkg'), {recursive: true})
    writeFileSync(path.join(src, 'pkg/tool2'), 'tool v2\n')
    const tgz = p('tmpnames2.tar.gz')
    execFileSync('tar', ['-czf', tgz, '-C', src, 'pkg'])
    await installFromTarball(spy, tgz, [{member: 'tool2', dest: p('tmpnames2-bin/tool2')}], opts())
    await writeFiles(spy, [{path: p('tmpnames2-etc/conf'), content: 'y\n', mode: 0o644}], opts())
    expect(scripts).toHaveLength(2)
    for (const s of scripts) {
      expect(s).toContain(`.kflan-tmp.${RUN_ID}.`)
      expect(s).not.toMatch(/\.new\b/)
      expect(s).not.toContain("'$$'")
      expect(s).not.toContain('.kflan-tmp.$$')
    }
  })
})
