import {createPrivateKey, X509Certificate} from 'node:crypto'
import {chmod, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {KflanError} from '../../src/errors.js'
import {
  certCoversAddress,
  daysLeft,
  describeCertificate,
  ensurePki,
  inspectCertificates,
  keyMatchesCert,
  PkiError,
  type PkiReport,
  type PkiRequest,
  planCertificates,
  verifyChain,
} from '../../src/pki/index.js'

const DAY = 86_400_000

function request(overrides: Partial<PkiRequest> = {}): PkiRequest {
  return {
    cluster: 'lab',
    keyAlgorithm: 'ecdsa',
    members: [
      {name: 'etcd1', addresses: ['10.0.0.1']},
      {name: 'etcd2', addresses: ['10.0.0.2']},
      {name: 'etcd3', addresses: ['10.0.0.3', 'etcd3.lab.example']},
    ],
    extraSans: ['etcd.lab.example', '192.168.50.10'],
    ...overrides,
  }
}

const actions = (r: PkiReport) => Object.fromEntries(r.certificates.map((c) => [c.name, c.action]))
const reasons = (r: PkiReport) => Object.fromEntries(r.certificates.map((c) => [c.name, c.reason]))

async function snapshot(dir: string): Promise<Record<string, string>> {
  const pki = join(dir, 'pki')
  const files = (await readdir(pki)).sort()
  return Object.fromEntries(
    await Promise.all(files.map(async (f) => [f, await readFile(join(pki, f), 'utf8')] as const)),
  )
}

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kflan-pki-'))
})
afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

describe('planCertificates', () => {
  it('plans the CA, a server and a peer certificate per member, and the clients', () => {
    const plan = planCertificates(request())
    expect(plan.map((s) => `${s.kind}:${s.name}`)).toEqual([
      'ca:ca',
      'server:server-etcd1',
      'peer:peer-etcd1',
      'server:server-etcd2',
      'peer:peer-etcd2',
      'server:server-etcd3',
      'peer:peer-etcd3',
      'client:flanneld',
      'client:kflan',
    ])
    const ca = plan[0]!
    expect(ca).toMatchObject({commonName: 'etcd-ca', organization: 'kflan', organizationalUnit: 'lab', extKeyUsage: []})
    expect(ca.validityDays).toBe(3650)

    const server3 = plan.find((s) => s.name === 'server-etcd3')!
    expect(server3.commonName).toBe('etcd3')
    expect(server3.member).toBe('etcd3')
    expect(server3.extKeyUsage).toEqual(['serverAuth', 'clientAuth'])
    expect(server3.dnsNames).toEqual(['etcd.lab.example', 'etcd3', 'etcd3.lab.example', 'localhost'])
    expect(server3.ipAddresses).toEqual(['10.0.0.3', '127.0.0.1', '192.168.50.10', '::1'])
    expect(server3.validityDays).toBe(3650)
    const peer3 = plan.find((s) => s.name === 'peer-etcd3')!
    expect(peer3.extKeyUsage).toEqual(['serverAuth', 'clientAuth'])
    expect([peer3.dnsNames, peer3.ipAddresses]).toEqual([server3.dnsNames, server3.ipAddresses])

    for (const client of ['flanneld', 'kflan']) {
      const spec = plan.find((s) => s.name === client)!
      expect(spec).toMatchObject({
        kind: 'client',
        commonName: client,
        extKeyUsage: ['clientAuth'],
        dnsNames: [],
        ipAddresses: [],
      })
    }
  })

  it('detects IPs and DNS names, canonicalises and de-duplicates them', () => {
    const plan = planCertificates(
      request({
        members: [
          {
            name: 'Etcd1',
            addresses: ['[FE80:0:0::1]', 'ETCD1', '127.0.0.1', '::ffff:10.1.2.3'],
            extraSans: ['alias.example.'],
          },
        ],
        extraSans: ['*.etcd.example', '0:0:0:0:0:0:0:1'],
        validityDays: 30,
      }),
    )
    const server = plan.find((s) => s.kind === 'server')!
    expect(server.name).toBe('server-Etcd1')
    expect(server.dnsNames).toEqual(['*.etcd.example', 'alias.example', 'etcd1', 'localhost'])
    expect(server.ipAddresses).toEqual(['10.1.2.3', '127.0.0.1', '::1', 'fe80::1'])
    expect(server.validityDays).toBe(30)
    expect(plan[0]!.validityDays).toBe(3650)
  })

  it('rejects names that are neither a hostname nor a file name, bad SANs and duplicates', () => {
    expect(() => planCertificates(request({members: [{name: '../etc', addresses: []}]}))).toThrow(PkiError)
    expect(() => planCertificates(request({members: [{name: 'a b', addresses: []}]}))).toThrow(PkiError)
    expect(() => planCertificates(request({extraSans: ['not a name']}))).toThrow(/neither an IP address nor a DNS name/)
    expect(() => planCertificates(request({extraSans: ['fe80::1%eth0']}))).toThrow(PkiError)
    expect(() =>
      planCertificates(
        request({
          members: [
            {name: 'e1', addresses: []},
            {name: 'E1', addresses: []},
          ],
        }),
      ),
    ).toThrow(/appears twice/)
    expect(() => planCertificates(request({validityDays: 0}))).toThrow(PkiError)
    try {
      planCertificates(request({extraSans: ['bad_san!']}))
    } catch (error) {
      expect((error as PkiError).hint).toMatch(/DNS names/)
    }
  })
})

describe('ensurePki', () => {
  it('issues the whole PKI with cfssl-style names and safe file modes', async () => {
    const report = await ensurePki(dir, request())
    expect(report.changed).toBe(true)
    expect(report.dir).toBe(join(dir, 'pki'))
    expect(Object.values(actions(report)).every((a) => a === 'issued')).toBe(true)
    expect(report.certificates.every((c) => c.reason === 'new')).toBe(true)
    expect(report.orphans).toEqual([])

    const files = (await readdir(join(dir, 'pki'))).sort()
    expect(files).toEqual(
      [
        'ca.pem',
        'ca-key.pem',
        'server-etcd1.pem',
        'server-etcd1-key.pem',
        'peer-etcd1.pem',
        'peer-etcd1-key.pem',
        'server-etcd2.pem',
        'server-etcd2-key.pem',
        'peer-etcd2.pem',
        'peer-etcd2-key.pem',
        'server-etcd3.pem',
        'server-etcd3-key.pem',
        'peer-etcd3.pem',
        'peer-etcd3-key.pem',
        'flanneld.pem',
        'flanneld-key.pem',
        'kflan.pem',
        'kflan-key.pem',
      ].sort(),
    )
    expect((await stat(join(dir, 'pki'))).mode & 0o777).toBe(0o700)
    for (const f of files) {
      const mode = (await stat(join(dir, 'pki', f))).mode & 0o777
      expect([f, mode]).toEqual([f, f.endsWith('-key.pem') ? 0o600 : 0o644])
    }

    const pem = (f: string) => readFile(join(dir, 'pki', f), 'utf8')
    const ca = await pem('ca.pem')
    const caCert = new X509Certificate(ca)
    expect(caCert.ca).toBe(true)
    expect(caCert.subject).toBe('CN=etcd-ca\nO=kflan\nOU=lab')
    expect(createPrivateKey(await pem('ca-key.pem')).asymmetricKeyType).toBe('ec')
    expect(await pem('ca-key.pem')).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/)
    expect(ca).toMatch(/^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n$/)

    const server = describeCertificate(await pem('server-etcd2.pem'), {caPem: ca})
    expect(server).toMatchObject({
      subject: 'CN=etcd2, O=kflan, OU=lab',
      commonName: 'etcd2',
      issuer: 'CN=etcd-ca, O=kflan, OU=lab',
      usages: ['serverAuth', 'clientAuth'],
      isCA: false,
      keyAlgorithm: 'ecdsa',
      chainsToCa: true,
      dnsNames: ['etcd.lab.example', 'etcd2', 'localhost'],
      ipAddresses: ['10.0.0.2', '127.0.0.1', '192.168.50.10', '::1'],
    })
    expect(server.daysLeft).toBeGreaterThanOrEqual(3649)
    expect(server.notAfter.getTime() - server.notBefore.getTime()).toBeGreaterThanOrEqual(3650 * DAY)
    expect(server.serial).toMatch(/^[0-7][0-9a-f]{31}$/)

    const client = describeCertificate(await pem('flanneld.pem'), {caPem: ca})
    expect(client).toMatchObject({commonName: 'flanneld', usages: ['clientAuth'], sans: [], chainsToCa: true})

    // Nothing secret in the report.
    expect(JSON.stringify(report)).not.toMatch(/PRIVATE KEY/)
  })

  it('reuses everything on a second run, byte for byte', async () => {
    await ensurePki(dir, request())
    const before = await snapshot(dir)
    const report = await ensurePki(dir, request())
    expect(report.changed).toBe(false)
    expect(Object.values(actions(report)).every((a) => a === 'reused')).toBe(true)
    expect(reasons(report)['server-etcd1']).toMatch(/^valid for 36\d\d more days$/)
    expect(await snapshot(dir)).toEqual(before)
  })

  it('re-issues exactly the certificates of a member whose SANs changed', async () => {
    await ensurePki(dir, request())
    const before = await snapshot(dir)
    const changed = request()
    changed.members[1] = {name: 'etcd2', addresses: ['10.0.0.5']}
    const report = await ensurePki(dir, changed)
    const act = actions(report)
    expect(act['server-etcd2']).toBe('reissued')
    expect(act['peer-etcd2']).toBe('reissued')
    expect(
      Object.entries(act)
        .filter(([, a]) => a !== 'reused')
        .map(([n]) => n),
    ).toEqual(['server-etcd2', 'peer-etcd2'])
    expect(reasons(report)['server-etcd2']).toBe('SANs changed: +10.0.0.5 -10.0.0.2')

    const after = await snapshot(dir)
    const differing = Object.keys(after)
      .filter((f) => after[f] !== before[f])
      .sort()
    expect(differing).toEqual(['peer-etcd2-key.pem', 'peer-etcd2.pem', 'server-etcd2-key.pem', 'server-etcd2.pem'])
    expect(certCoversAddress(after['server-etcd2.pem']!, '10.0.0.5')).toBe(true)
    expect(certCoversAddress(after['server-etcd2.pem']!, '10.0.0.2')).toBe(false)
  })

  it('re-issues certificates that expire within 30 days (injected clock)', async () => {
    const t0 = new Date('2030-01-01T00:00:00Z')
    await ensurePki(dir, request({validityDays: 100}), {now: t0})
    const early = await ensurePki(dir, request({validityDays: 100}), {now: new Date(t0.getTime() + 60 * DAY)})
    expect(early.changed).toBe(false)

    const late = new Date(t0.getTime() + 88 * DAY)
    const report = await ensurePki(dir, request({validityDays: 100}), {now: late})
    expect(actions(report).ca).toBe('reused')
    const leaves = report.certificates.filter((c) => c.kind !== 'ca')
    expect(leaves.every((c) => c.action === 'reissued')).toBe(true)
    expect(leaves.every((c) => c.reason === 'expires in 12 day(s)')).toBe(true)
    const pem = await readFile(join(dir, 'pki', 'kflan.pem'), 'utf8')
    expect(daysLeft(pem, late)).toBe(100)

    const expired = await ensurePki(dir, request({validityDays: 100}), {now: new Date(late.getTime() + 101 * DAY)})
    expect(reasons(expired).kflan).toBe('expired 1 day(s) ago')
  })

  it('caps a leaf at the CA lifetime and warns about an expiring CA instead of churning', async () => {
    const t0 = new Date('2030-01-01T00:00:00Z')
    await ensurePki(dir, request({caValidityDays: 60}), {now: t0})
    const kflan = describeCertificate(await readFile(join(dir, 'pki', 'kflan.pem'), 'utf8'))
    const ca = describeCertificate(await readFile(join(dir, 'pki', 'ca.pem'), 'utf8'))
    expect(kflan.notAfter).toEqual(ca.notAfter)

    const report = await ensurePki(dir, request({caValidityDays: 60}), {now: new Date(t0.getTime() + 50 * DAY)})
    expect(report.changed).toBe(false)
    expect(report.warnings.join('\n')).toMatch(/the CA expires in 10 day\(s\)/)

    await expect(ensurePki(dir, request(), {now: new Date(t0.getTime() + 61 * DAY)})).rejects.toThrow(
      /CA certificate expired/,
    )
  })

  it('issues RSA 2048 keys on request, and re-issues leaves when the algorithm changes', async () => {
    const rsa = await ensurePki(dir, request({keyAlgorithm: 'rsa'}))
    expect(rsa.changed).toBe(true)
    const key = createPrivateKey(await readFile(join(dir, 'pki', 'server-etcd1-key.pem'), 'utf8'))
    expect(key.asymmetricKeyType).toBe('rsa')
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048)
    expect(await readFile(join(dir, 'pki', 'ca-key.pem'), 'utf8')).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/)
    const server = describeCertificate(await readFile(join(dir, 'pki', 'server-etcd1.pem'), 'utf8'), {
      caPem: await readFile(join(dir, 'pki', 'ca.pem'), 'utf8'),
    })
    expect(server).toMatchObject({keyAlgorithm: 'rsa', chainsToCa: true})

    const again = await ensurePki(dir, request({keyAlgorithm: 'rsa'}))
    expect(again.changed).toBe(false)

    const switched = await ensurePki(dir, request({keyAlgorithm: 'ecdsa'}))
    expect(actions(switched).ca).toBe('reused')
    expect(switched.warnings.join('\n')).toMatch(/CA key is rsa while keyAlgorithm is ecdsa/)
    const leaves = switched.certificates.filter((c) => c.kind !== 'ca')
    expect(leaves.every((c) => c.action === 'reissued' && c.reason === 'key algorithm changed: rsa → ecdsa')).toBe(true)
    // An RSA CA signs ECDSA leaves.
    expect(
      verifyChain(
        await readFile(join(dir, 'pki', 'peer-etcd3.pem'), 'utf8'),
        await readFile(join(dir, 'pki', 'ca.pem'), 'utf8'),
      ),
    ).toBe(true)
  })

  it('re-issues a leaf whose key is missing, foreign or unreadable, or that another CA signed', async () => {
    await ensurePki(dir, request())
    const pki = join(dir, 'pki')
    await unlink(join(pki, 'server-etcd1-key.pem'))
    await writeFile(join(pki, 'peer-etcd1-key.pem'), await readFile(join(pki, 'peer-etcd2-key.pem')), {mode: 0o600})
    await writeFile(join(pki, 'flanneld-key.pem'), 'garbage', {mode: 0o600})
    await writeFile(join(pki, 'kflan.pem'), 'not a certificate')
    // A certificate from another PKI.
    const other = await mkdtemp(join(tmpdir(), 'kflan-pki-other-'))
    try {
      await ensurePki(other, request())
      for (const f of ['server-etcd3.pem', 'server-etcd3-key.pem']) {
        await writeFile(join(pki, f), await readFile(join(other, 'pki', f)), {mode: 0o600})
      }
    } finally {
      await rm(other, {recursive: true, force: true})
    }

    const report = await ensurePki(dir, request())
    expect(reasons(report)).toMatchObject({
      'server-etcd1': 'key file missing',
      'peer-etcd1': 'key does not match',
      'server-etcd3': 'not signed by the current CA',
      flanneld: 'key unreadable',
      kflan: 'certificate unreadable',
    })
    expect(actions(report)).toMatchObject({ca: 'reused', 'server-etcd2': 'reused', 'peer-etcd3': 'reused'})
    const {certificates, unreadable} = await inspectCertificates(dir)
    expect(unreadable).toEqual([])
    expect(certificates.every((c) => c.chainsToCa === true && c.keyMatches === true)).toBe(true)
  })

  it('refuses to go on without a usable CA key while certificates exist', async () => {
    await ensurePki(dir, request())
    const pki = join(dir, 'pki')
    const caKey = await readFile(join(pki, 'ca-key.pem'))

    await unlink(join(pki, 'ca-key.pem'))
    const missing = await ensurePki(dir, request()).catch((error: unknown) => error)
    expect(missing).toBeInstanceOf(PkiError)
    expect((missing as PkiError).message).toMatch(/CA key .*ca-key\.pem is missing/)
    expect((missing as PkiError).hint).toMatch(/restore it from a backup/)
    // One error hierarchy: the CLI prints it as a message and a hint, exit 1.
    expect(missing).toBeInstanceOf(KflanError)
    expect((missing as KflanError).exitCode).toBe(1)

    await writeFile(join(pki, 'ca-key.pem'), '-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n', {
      mode: 0o600,
    })
    const corrupt = await ensurePki(dir, request()).catch((error: unknown) => error)
    expect(corrupt).toBeInstanceOf(PkiError)
    expect(String((corrupt as Error).message)).toMatch(/cannot be read/)
    expect(String((corrupt as Error).message)).not.toMatch(/AAAA/)

    await writeFile(join(pki, 'ca-key.pem'), await readFile(join(pki, 'kflan-key.pem')), {mode: 0o600})
    await expect(ensurePki(dir, request())).rejects.toThrow(/does not belong to/)

    await unlink(join(pki, 'ca-key.pem'))
    await unlink(join(pki, 'ca.pem'))
    await expect(ensurePki(dir, request())).rejects.toThrow(/CA certificate .* is missing, but 8 certificate/)

    await writeFile(join(pki, 'ca-key.pem'), caKey, {mode: 0o600})
  })

  it('reports certificates of removed members as orphans and tightens loose modes', async () => {
    await ensurePki(dir, request())
    await chmod(join(dir, 'pki', 'kflan-key.pem'), 0o644)
    await chmod(join(dir, 'pki'), 0o755)
    const report = await ensurePki(dir, request({members: request().members.slice(0, 2)}))
    expect(report.changed).toBe(false)
    expect(report.orphans).toEqual(['peer-etcd3', 'server-etcd3'])
    expect(report.certificates.map((c) => c.name)).not.toContain('server-etcd3')
    expect(report.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/kflan-key\.pem to mode 0600/)]))
    expect((await stat(join(dir, 'pki', 'kflan-key.pem'))).mode & 0o777).toBe(0o600)
    expect((await stat(join(dir, 'pki'))).mode & 0o777).toBe(0o700)
  })

  it('creates the state directory itself', async () => {
    const nested = join(dir, 'a', '.kflan', 'lab')
    await ensurePki(nested, request({members: [{name: 'solo', addresses: ['10.1.1.1']}]}))
    expect((await stat(join(nested, 'pki'))).mode & 0o777).toBe(0o700)
  })
})

describe('pure helpers', () => {
  it('answer for addresses, keys, chains and days', async () => {
    await ensurePki(dir, request())
    const read = (f: string) => readFile(join(dir, 'pki', f), 'utf8')
    const [server, serverKey, otherKey, ca, client] = await Promise.all([
      read('server-etcd3.pem'),
      read('server-etcd3-key.pem'),
      read('peer-etcd3-key.pem'),
      read('ca.pem'),
      read('kflan.pem'),
    ])
    expect(certCoversAddress(server, '10.0.0.3')).toBe(true)
    expect(certCoversAddress(server, '127.0.0.1')).toBe(true)
    expect(certCoversAddress(server, '::1')).toBe(true)
    expect(certCoversAddress(server, '0:0:0:0:0:0:0:1')).toBe(true)
    expect(certCoversAddress(server, 'localhost')).toBe(true)
    expect(certCoversAddress(server, 'ETCD3.lab.example')).toBe(true)
    expect(certCoversAddress(server, '10.0.0.1')).toBe(false)
    expect(certCoversAddress(server, 'etcd1')).toBe(false)
    expect(certCoversAddress(client, 'kflan')).toBe(false) // the CN is not a name
    expect(keyMatchesCert(serverKey, server)).toBe(true)
    expect(keyMatchesCert(otherKey, server)).toBe(false)
    expect(keyMatchesCert('junk', server)).toBe(false)
    expect(verifyChain(server, ca)).toBe(true)
    expect(verifyChain(ca, ca)).toBe(true)
    expect(verifyChain(server, server)).toBe(false)
    expect(verifyChain('junk', ca)).toBe(false)
    const now = new Date()
    expect(daysLeft(server, now)).toBeGreaterThanOrEqual(3649)
    expect(daysLeft(server, new Date(now.getTime() + 3700 * DAY))).toBeLessThan(0)
  })
})
