/**
 * Issue 11: the templates escape by default. Every template is rendered with hostile values in
 * every field (quotes, `$`, `%`, backslashes, `;`, spaces), bypassing validation, and the output
 * is parsed the way systemd parses unit files and environment files (a small parser below): the
 * same sections, directives, keys and command-line words as with benign values, and every value
 * arrives literally. Newlines and NUL are refused at render time as a kflan bug.
 */
import {describe, expect, it} from 'vitest'

import type {Cluster} from '../../src/inventory/model.js'

import {shq} from '../../src/remote/shell.js'
import {envValue, RenderBug, unitArg, unitSh, unitValue} from '../../src/render/escape.js'
import {type FileSpec, renderHost, withHostsBlock} from '../../src/render/index.js'
import {renderTemplate, TEMPLATE_FORMATS} from '../../src/render/templates.js'
import {exampleCluster, fakePki} from './helpers.js'

// ---------------------------------------------------------------- a tiny systemd parser

/** A decoded command-line word: literal text, with `\u0001` marking a specifier and `\u0002` a variable. */
const SPEC = '\u0001'
const VAR = '\u0002'

interface Directive {
  section: string
  key: string
  value: string
}

/** Unit file lines → directives (sections, comments, backslash continuation as systemd does). */
export function parseUnit(text: string): Directive[] {
  const out: Directive[] = []
  let section = ''
  let pending = ''
  for (const raw of text.split('\n')) {
    let line = pending + raw
    pending = ''
    const trailing = /\\+$/.exec(line)?.[0].length ?? 0
    if (trailing % 2 === 1) {
      pending = line.slice(0, -1) + ' '
      continue
    }

    line = line.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const sec = /^\[([^\]]+)\]$/.exec(line)
    if (sec) {
      section = sec[1]
      continue
    }

    const eq = line.indexOf('=')
    if (eq <= 0) throw new Error(`not a directive: ${JSON.stringify(line)}`)
    out.push({section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim()})
  }

  if (pending) throw new Error('file ends inside a continued line')
  return out
}

/** Specifiers and `$$` in an already unquoted word. */
function expand(word: string, vars: boolean): string {
  let s = word.replaceAll(/%(.)/g, (_, c: string) => (c === '%' ? '%' : `${SPEC}${c}`))
  if (vars)
    s = s.replaceAll(/\$(\$|\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)/g, (_, v: string) =>
      v === '$' ? '$' : `${VAR}${v.replaceAll(/[{}]/g, '')}`,
    )
  return s
}

const C_ESCAPES: Record<string, string> = {
  a: '\u0007',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  s: ' ',
  '\\': '\\',
  '"': '"',
  "'": "'",
}

/** A command line → words: quotes, C escapes (in and out of quotes), then specifiers and variables. */
export function execWords(value: string): string[] {
  const words: string[] = []
  let cur: string | undefined
  let quote: string | undefined
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]
    if (ch === '\\') {
      const n = value[i + 1]
      if (n === 'x') {
        cur = (cur ?? '') + String.fromCodePoint(Number.parseInt(value.slice(i + 2, i + 4), 16))
        i += 3
      } else if (n !== undefined && n in C_ESCAPES) {
        cur = (cur ?? '') + C_ESCAPES[n]
        i += 1
      } else throw new Error(`unknown escape \\${n} in ${JSON.stringify(value)}`)
    } else if (quote) {
      if (ch === quote) quote = undefined
      else cur = (cur ?? '') + ch
    } else if (ch === '"' || ch === "'") {
      quote = ch
      cur = cur ?? ''
    } else if (ch === ' ' || ch === '\t') {
      if (cur !== undefined) words.push(cur)
      cur = undefined
    } else cur = (cur ?? '') + ch
  }

  if (quote) throw new Error(`unbalanced quoting in ${JSON.stringify(value)}`)
  if (cur !== undefined) words.push(cur)
  return words.map((w) => expand(w, true))
}

/** An environment file (systemd's EnvironmentFile= rules for double-quoted values) → key/value pairs. */
export function parseEnvFile(text: string): [string, string][] {
  const out: [string, string][] = []
  for (const line of text.split('\n')) {
    const t = line.trim()
    if (t === '' || t.startsWith('#') || t.startsWith(';')) continue
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(t)
    if (!m) throw new Error(`not an assignment: ${JSON.stringify(line)}`)
    const v = m[2]
    if (!v.startsWith('"')) {
      out.push([m[1], v])
      continue
    }

    let value = ''
    let i = 1
    for (; i < v.length; i++) {
      const ch = v[i]
      if (ch === '\\' && i + 1 < v.length) {
        const n = v[++i]
        value += '"\\`$'.includes(n) ? n : `\\${n}`
      } else if (ch === '"') break
      else value += ch
    }

    if (i >= v.length) throw new Error(`unterminated quote: ${JSON.stringify(line)}`)
    if (v.slice(i + 1).trim() !== '') throw new Error(`text after the closing quote: ${JSON.stringify(line)}`)
    out.push([m[1], value])
  }

  return out
}

// ---------------------------------------------------------------- the cluster with placeholders

/** Every string field that reaches a template, by a name, with how to set it on a cluster copy. */
type Setter = (c: Cluster, v: string) => void
function fields(c: Cluster): [string, Setter][] {
  const f: [string, Setter][] = [
    ['cluster', (x, v) => (x.name = v)],
    ['etcd.dataDir', (x, v) => (x.etcd.dataDir = v)],
    ['etcd.installDir', (x, v) => (x.etcd.installDir = v)],
    ['etcd.token', (x, v) => (x.etcd.token = v)],
    ['flannel.installDir', (x, v) => (x.flannel.installDir = v)],
    ['flannel.prefix', (x, v) => (x.flannel.prefix = v)],
    ['flannel.subnetFile', (x, v) => (x.flannel.subnetFile = v)],
    ['flannel.network', (x, v) => (x.flannel.network = v)],
  ]
  for (const [i, _] of c.hosts.entries()) {
    f.push(
      [`hosts[${i}].name`, (x, v) => (x.hosts[i].name = v)],
      [`hosts[${i}].address`, (x, v) => (x.hosts[i].address = v)],
      [`hosts[${i}].interface`, (x, v) => (x.hosts[i].interface = v)],
    )
  }

  return f
}

/** Paths must stay absolute (the executable word); the rest may be anything. */
const absolute = new Set([
  'etcd.dataDir',
  'etcd.installDir',
  'flannel.installDir',
  'flannel.prefix',
  'flannel.subnetFile',
])
const placeholder = (i: number, name: string) => `${absolute.has(name) ? '/' : ''}Pq${i}qP`
const HOSTILE = `a"b'c$d%e\\f;g h\`i$$j%%k\${L}`
const hostile = (i: number, name: string) => `${absolute.has(name) ? '/' : ''}${HOSTILE}${i}`
const DOCKER_BENIGN = '/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock'
const DOCKER_HOSTILE = '/usr/bin/dockerd -H fd:// --x=%i $OPTIONS'

function clusterWith(value: (i: number, name: string) => string): Cluster {
  const base = exampleCluster('example')
  const c = structuredClone(base)
  for (const [i, [name, set]] of fields(base).entries()) set(c, value(i, name))
  return c
}

function render(c: Cluster, dockerExecStart: string): FileSpec[] {
  return c.hosts.flatMap((h) =>
    renderHost(c, h, {pki: fakePki, dockerExecStart}).filter((f) => !f.path.endsWith('.pem')),
  )
}

const isEnv = (f: FileSpec) => f.path.endsWith('/etcd.conf')
const isUnit = (f: FileSpec) => f.path.endsWith('.service') || f.path.endsWith('10-kflan-flannel.conf')

describe('templates escape every value for their format', () => {
  const base = exampleCluster('example')
  const names = fields(base).map(([n]) => n)
  const benign = render(clusterWith(placeholder), DOCKER_BENIGN)
  const evil = render(clusterWith(hostile), DOCKER_HOSTILE)
  /** benign text with every placeholder replaced by its hostile value (`sh`: shell-quoted). */
  const expected = (text: string, inShell = false) =>
    names.reduce((t, n, i) => t.split(placeholder(i, n)).join(inShell ? shq(hostile(i, n)) : hostile(i, n)), text)

  it('renders the same files with hostile values (and the test covers every template that takes values)', () => {
    expect(evil.map((f) => f.path).length).toBe(benign.length)
    const used = new Set(
      Object.entries(TEMPLATE_FORMATS)
        .filter(([, f]) => f !== 'static')
        .map(([n]) => n),
    )
    expect(used).toEqual(new Set(['docker-flannel.conf', 'etcd.conf', 'etcd.service', 'flanneld.service']))
    expect(benign.filter(isUnit).length).toBeGreaterThanOrEqual(3)
    expect(benign.filter(isEnv).length).toBeGreaterThanOrEqual(1)
    // Every field reaches some file (the interface only on flannel hosts).
    const all = benign.map((f) => f.content).join('\n')
    const missing = names.filter((n, i) => !all.includes(placeholder(i, n)))
    expect(missing).toEqual(base.hosts.flatMap((h, i) => (h.roles.flannel ? [] : [`hosts[${i}].interface`])))
  })

  it('unit files and the docker drop-in: same sections, directives and command-line words; values literal', () => {
    let execs = 0
    for (const [fi, b] of benign.entries()) {
      if (!isUnit(b)) continue
      const good = parseUnit(b.content)
      const bad = parseUnit(evil[fi].content)
      expect(
        bad.map((d) => `${d.section}.${d.key}`),
        b.path,
      ).toEqual(good.map((d) => `${d.section}.${d.key}`))
      for (const [di, d] of good.entries()) {
        const got = bad[di].value
        if (!d.key.startsWith('Exec')) {
          expect(expand(got, false), `${b.path} ${d.key}`).toBe(expected(expand(d.value, false)))
          continue
        }

        execs++
        const gw = execWords(d.value)
        const hw = execWords(got)
        if (d.key === 'ExecStart' && b.path.includes('docker.service.d') && gw.length > 1) {
          // docker's own command line: its words stay words, its specifiers are literal.
          expect(hw).toEqual([
            ...DOCKER_HOSTILE.split(' ').map((w) => expand(w.replaceAll('%', '%%'), true)),
            `${VAR}DOCKER_NETWORK_OPTIONS`,
          ])
          continue
        }

        expect(hw.length, `${b.path} ${d.key}: ${got}`).toBe(gw.length)
        for (const [wi, w] of gw.entries())
          expect(hw[wi], `${b.path} ${d.key} word ${wi}`).toBe(expected(w, gw[wi - 1] === '-c'))
      }
    }

    expect(execs).toBeGreaterThanOrEqual(6)
  })

  it('the etcd environment file: same keys, values literal', () => {
    for (const [fi, b] of benign.entries()) {
      if (!isEnv(b)) continue
      const good = parseEnvFile(b.content)
      const bad = parseEnvFile(evil[fi].content)
      expect(bad.map(([k]) => k)).toEqual(good.map(([k]) => k))
      for (const [i, [k, v]] of good.entries()) expect(bad[i][1], k).toBe(expected(v))
    }
  })

  it.each(['\n', '\r', '\0', '\u001B'])(
    'refuses a control character (%j) in any field at render time, as a kflan bug',
    (ch) => {
      for (const [name, set] of fields(base)) {
        const c = structuredClone(base)
        set(c, `${absolute.has(name) ? '/' : ''}x${ch}ExecStartPre=/bin/id`)
        const touched = (() => {
          try {
            render(c, DOCKER_BENIGN)
            return undefined
          } catch (error) {
            return error
          }
        })()
        // Fields used only outside templates (a host without a role) render nothing.
        if (touched === undefined) {
          const rendered = render(c, DOCKER_BENIGN)
            .map((f) => f.content)
            .join('')
          expect(rendered, name).not.toContain('ExecStartPre=/bin/id')
          continue
        }

        expect(touched, name).toBeInstanceOf(RenderBug)
        expect((touched as Error).message).toMatch(
          /^kflan bug: .* cannot be rendered \(control character; validation should have refused it\)/,
        )
      }

      expect(() => render(base, `/usr/bin/dockerd${ch}ExecStartPre=/bin/id`)).toThrow(RenderBug)
    },
  )

  it('refuses a host name or address that is not one word in /etc/hosts', () => {
    for (const bad of ['a b', 'a\nb', 'x;y']) {
      const c = structuredClone(base)
      c.hosts[0].name = bad
      expect(() => withHostsBlock('', c), bad).toThrow(RenderBug)
    }

    expect(withHostsBlock('', base)).toContain('192.168.204.171 master01\n')
  })

  it('refuses what a plain directive cannot spell: a trailing backslash, surrounding whitespace; a relative executable', () => {
    expect(() => unitValue('f', 'a\\')).toThrow(/trailing backslash/)
    expect(() => unitValue('f', ' a')).toThrow(/whitespace/)
    const c = structuredClone(base)
    c.etcd.installDir = '-/opt/etcd'
    expect(() => render(c, DOCKER_BENIGN)).toThrow(/executable path must be absolute/)
    expect(() => renderTemplate('sysctl.conf', {x: 'y'})).not.toThrow() // no variable used: nothing to escape
  })

  it('escapers by example', () => {
    expect(unitArg('f', String.raw`100%$HOME a;b\"'`)).toBe(String.raw`100%%$$HOME\x20a\x3bb\x5c\x22\x27`)
    expect(unitSh('f', "10.0.0.0/8'; id; '")).toBe(String.raw`\x2710.0.0.0/8\x27\x5c\x27\x27; id; \x27\x5c\x27\x27\x27`)
    expect(execWords(`/bin/sh -c '${unitSh('f', "a'b $X")}'`)).toEqual(['/bin/sh', '-c', `'a'\\''b $X'`])
    expect(envValue('f', 'a"b\\c$d`e')).toBe('a\\"b\\\\c\\$d\\`e')
  })
})
