/**
 * The issued certificates, checked by others than ourselves: the openssl
 * binary, and a real mutual-TLS handshake between node:tls peers (OpenSSL
 * underneath, verifying chain, EKU purpose and IP/DNS names as etcd's clients
 * and peers will).
 */
import {execFileSync} from 'node:child_process'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {connect, type ConnectionOptions, createServer, type TLSSocket} from 'node:tls'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ensurePki, type KeyAlgorithm, type PkiRequest} from '../../src/pki/index.js'

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], {stdio: 'pipe'})
    return true
  } catch {
    return false
  }
})()

const openssl = (...args: string[]) =>
  execFileSync('openssl', args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})

function request(keyAlgorithm: KeyAlgorithm): PkiRequest {
  return {
    cluster: 'lab',
    keyAlgorithm,
    members: [
      {name: 'etcd1', addresses: ['10.0.0.1']},
      {name: 'etcd2', addresses: ['10.0.0.2']},
      {name: 'etcd3', addresses: ['10.0.0.3']},
    ],
    extraSans: ['etcd.lab.example'],
  }
}

const dirs: Record<KeyAlgorithm, string> = {ecdsa: '', rsa: ''}
beforeAll(async () => {
  for (const alg of ['ecdsa', 'rsa'] as const) {
    dirs[alg] = await mkdtemp(join(tmpdir(), `kflan-pki-${alg}-`))
    await ensurePki(dirs[alg], request(alg))
  }
})
afterAll(async () => {
  for (const d of Object.values(dirs)) if (d) await rm(d, {recursive: true, force: true})
})

const file = (alg: KeyAlgorithm, name: string) => join(dirs[alg], 'pki', name)

describe.skipIf(!hasOpenssl).each(['ecdsa', 'rsa'] as const)('openssl agrees (%s)', (alg) => {
  const leaves = [
    'server-etcd1',
    'peer-etcd1',
    'server-etcd2',
    'peer-etcd2',
    'server-etcd3',
    'peer-etcd3',
    'flanneld',
    'kflan',
  ]

  it('verifies every certificate against ca.pem', () => {
    const out = openssl('verify', '-CAfile', file(alg, 'ca.pem'), ...leaves.map((l) => file(alg, `${l}.pem`)))
    expect(out.trim().split('\n')).toEqual(leaves.map((l) => `${file(alg, `${l}.pem`)}: OK`))
    // And with the purposes etcd's TLS stacks check.
    for (const l of leaves.filter((n) => n !== 'flanneld' && n !== 'kflan')) {
      openssl('verify', '-purpose', 'sslserver', '-CAfile', file(alg, 'ca.pem'), file(alg, `${l}.pem`))
    }

    for (const l of leaves)
      openssl('verify', '-purpose', 'sslclient', '-CAfile', file(alg, 'ca.pem'), file(alg, `${l}.pem`))
    expect(() =>
      openssl('verify', '-purpose', 'sslserver', '-CAfile', file(alg, 'ca.pem'), file(alg, 'flanneld.pem')),
    ).toThrow()
  })

  const ext = (name: string) =>
    openssl(
      'x509',
      '-in',
      file(alg, `${name}.pem`),
      '-noout',
      '-ext',
      'subjectAltName,extendedKeyUsage,keyUsage,basicConstraints',
    )
  const leafKeyUsage = alg === 'rsa' ? 'Digital Signature, Key Encipherment' : 'Digital Signature'

  it('shows the CA extensions', () => {
    const out = openssl(
      'x509',
      '-in',
      file(alg, 'ca.pem'),
      '-noout',
      '-subject',
      '-ext',
      'keyUsage,basicConstraints,subjectKeyIdentifier',
    )
    expect(out).toMatch(/subject=CN = etcd-ca, O = kflan, OU = lab/)
    expect(out).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE/)
    expect(out).toMatch(/X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/)
    expect(out).toMatch(/X509v3 Subject Key Identifier: \n\s+([0-9A-F]{2}:){19}[0-9A-F]{2}/)
  })

  it.each(['server-etcd2', 'peer-etcd2'])('shows the %s extensions', (name) => {
    const out = ext(name)
    expect(out).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE/)
    expect(out).toMatch(new RegExp(`X509v3 Key Usage: critical\\n\\s+${leafKeyUsage}\\n`))
    expect(out).toMatch(
      /X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/,
    )
    expect(out).toMatch(
      /X509v3 Subject Alternative Name: \n\s+DNS:etcd.lab.example, DNS:etcd2, DNS:localhost, IP Address:10.0.0.2, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1\n/,
    )
    const aki = openssl('x509', '-in', file(alg, `${name}.pem`), '-noout', '-ext', 'authorityKeyIdentifier')
    const ski = openssl('x509', '-in', file(alg, 'ca.pem'), '-noout', '-ext', 'subjectKeyIdentifier')
    expect(
      aki
        .split('\n')[1]!
        .trim()
        .replace(/^keyid:/, ''),
    ).toBe(ski.split('\n')[1]!.trim())
  })

  it.each(['flanneld', 'kflan'])('shows the %s client extensions', (name) => {
    const out = ext(name)
    expect(out).toMatch(/X509v3 Extended Key Usage: \n\s+TLS Web Client Authentication\n/)
    expect(out).toMatch(new RegExp(`X509v3 Key Usage: critical\\n\\s+${leafKeyUsage}\\n`))
    expect(out).not.toMatch(/Subject Alternative Name/)
    expect(openssl('x509', '-in', file(alg, `${name}.pem`), '-noout', '-subject')).toBe(
      `subject=CN = ${name}, O = kflan, OU = lab\n`,
    )
  })

  it('pairs every key with its certificate', () => {
    for (const name of ['ca', ...leaves]) {
      const fromKey = openssl('pkey', '-in', file(alg, `${name}-key.pem`), '-pubout')
      const fromCert = openssl('x509', '-in', file(alg, `${name}.pem`), '-noout', '-pubkey')
      expect(fromKey).toBe(fromCert)
      if (alg === 'rsa') {
        const modulus = openssl('rsa', '-in', file(alg, `${name}-key.pem`), '-noout', '-modulus')
        expect(openssl('x509', '-in', file(alg, `${name}.pem`), '-noout', '-modulus')).toBe(modulus)
      }
    }

    expect(openssl('pkey', '-in', file(alg, 'kflan-key.pem'), '-pubout')).not.toBe(
      openssl('x509', '-in', file(alg, 'flanneld.pem'), '-noout', '-pubkey'),
    )
  })

  it('encodes the signature algorithm as RFC 5758 / RFC 4055 say', () => {
    const out = openssl('asn1parse', '-in', file(alg, 'server-etcd1.pem'))
    if (alg === 'ecdsa') {
      // ecdsa-with-SHA256 with absent parameters: the next element is the issuer Name.
      expect(out).toMatch(/OBJECT\s+:ecdsa-with-SHA256\n.*cons: SEQUENCE/)
      expect(out).not.toMatch(/ecdsa-with-SHA256\n.*prim: NULL/)
    } else {
      expect(out).toMatch(/OBJECT\s+:sha256WithRSAEncryption\n.*prim: NULL/)
    }
  })
})

describe.each(['ecdsa', 'rsa'] as const)('mutual TLS with the issued certificates (%s)', (alg) => {
  const pem = (name: string) => readFile(file(alg, name))

  /** Serve with `serverCert`'s certificate, requiring a client certificate; connect with `clientCert`'s. */
  async function handshake(opts: {
    serverCert: string
    clientCert?: string
    servername?: string
    host?: string
    otherCa?: boolean
    clientFromOtherPki?: boolean
  }): Promise<{ok: true; peer: string; serverSaw: string} | {ok: false; error: string; served: boolean}> {
    const ca = await pem('ca.pem')
    const other: KeyAlgorithm = alg === 'rsa' ? 'ecdsa' : 'rsa'
    const clientPem = (name: string) => readFile(file(opts.clientFromOtherPki ? other : alg, name))
    const server = createServer(
      {
        cert: await pem(`${opts.serverCert}.pem`),
        key: await pem(`${opts.serverCert}-key.pem`),
        ca,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (sock) => sock.end(String((sock.getPeerCertificate() as {subject?: {CN?: string}}).subject?.CN)),
    )
    let served = false
    let serverDone = false
    server.on('secureConnection', () => (served = true))
    server.on('tlsClientError', () => (serverDone = true))
    await new Promise<void>((resolve) => {
      server.listen(0, '127.0.0.1', resolve)
    })
    const {port} = server.address() as {port: number}
    const clientOpts: ConnectionOptions = {
      host: opts.host ?? '127.0.0.1',
      port,
      ca: opts.otherCa ? await readFile(file(other, 'ca.pem')) : ca,
      ...(opts.servername ? {servername: opts.servername} : {}),
      ...(opts.clientCert
        ? {cert: await clientPem(`${opts.clientCert}.pem`), key: await clientPem(`${opts.clientCert}-key.pem`)}
        : {}),
    }
    try {
      const result = await new Promise<{ok: true; peer: string; serverSaw: string} | {ok: false; error: string}>(
        (resolve) => {
          let data = ''
          const sock: TLSSocket = connect(clientOpts)
          sock.setTimeout(5000, () => sock.destroy(new Error('timeout')))
          sock.on('data', (d) => (data += d))
          sock.on('error', (err) =>
            resolve({ok: false, error: `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`}),
          )
          sock.on('end', () => {
            const peer = (sock.getPeerCertificate() as {subject?: {CN?: string}}).subject?.CN ?? ''
            resolve(data ? {ok: true, peer, serverSaw: data} : {ok: false, error: 'closed without data'})
          })
        },
      )
      if (result.ok) return result
      // eslint-disable-next-line no-unmodified-loop-condition -- set by the server's callbacks while the loop sleeps
      for (let i = 0; i < 50 && !serverDone && !served; i++) await sleep(10)
      return {...result, served}
    } finally {
      server.close()
    }
  }

  it('a client (kflan, flanneld) talks to a member over 127.0.0.1, both sides verified', async () => {
    expect(await handshake({serverCert: 'server-etcd1', clientCert: 'kflan'})).toEqual({
      ok: true,
      peer: 'etcd1',
      serverSaw: 'kflan',
    })
    expect(await handshake({serverCert: 'server-etcd2', clientCert: 'flanneld', host: 'localhost'})).toEqual({
      ok: true,
      peer: 'etcd2',
      serverSaw: 'flanneld',
    })
  })

  it('peers authenticate each other with their peer certificates (serverAuth + clientAuth)', async () => {
    expect(await handshake({serverCert: 'peer-etcd1', clientCert: 'peer-etcd2'})).toEqual({
      ok: true,
      peer: 'etcd1',
      serverSaw: 'etcd2',
    })
  })

  it('rejects no client certificate, a wrong name, a client-only server certificate, foreign certificates', async () => {
    const noClient = await handshake({serverCert: 'server-etcd1'})
    expect(noClient).toMatchObject({ok: false, error: expect.stringMatching(/CERTIFICATE_REQUIRED/)})

    const wrongName = await handshake({serverCert: 'server-etcd1', clientCert: 'kflan', servername: 'etcd2'})
    expect(wrongName).toMatchObject({ok: false, error: expect.stringMatching(/ERR_TLS_CERT_ALTNAME_INVALID/)})

    const clientAsServer = await handshake({serverCert: 'flanneld', clientCert: 'kflan'})
    expect(clientAsServer).toMatchObject({ok: false, error: expect.stringMatching(/INVALID_PURPOSE/)})

    const foreignServer = await handshake({serverCert: 'server-etcd1', clientCert: 'kflan', otherCa: true})
    expect(foreignServer).toMatchObject({
      ok: false,
      error: expect.stringMatching(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY/),
    })

    const foreignClient = await handshake({serverCert: 'server-etcd1', clientCert: 'kflan', clientFromOtherPki: true})
    // node:tls checks the client's chain after the handshake and drops the connection unserved.
    expect(foreignClient).toMatchObject({ok: false, error: 'closed without data', served: false})
  })
})
