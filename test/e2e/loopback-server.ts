import type {AddressInfo} from 'node:net'

/**
 * A file server on loopback for download tests and benchmarks (test/e2e/download.test.ts,
 * bench/download.ts): http, or https with a certificate from a throwaway CA made with openssl
 * (trusted by a kflan process through NODE_EXTRA_CA_CERTS).
 */
import {createHash} from 'node:crypto'
import {readFileSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import {join} from 'node:path'

import {run} from './lab-helpers.js'

export const sha256 = (buf: Buffer) => createHash('sha256').update(buf).digest('hex')

export interface Served {
  name: string
  data: Buffer
  sha256: string
}

/** A loopback file server: counts GETs per path, follows /r/NAME → /NAME, can die after N bytes. */
export class FileServer {
  requests: string[] = []
  /** Path → bytes after which the connection is destroyed (a server that dies mid-download). */
  dieAfter = new Map<string, number>()
  /** Bytes per second for every file (a slow server, so that progress shows); 0 = as fast as it goes. */
  rate = 0
  private server!: http.Server
  port = 0

  constructor(
    private readonly files: Served[],
    private readonly tls?: {key: string; cert: string},
  ) {}

  async start(): Promise<void> {
    const handler: http.RequestListener = (req, res) => {
      const path = req.url ?? '/'
      this.requests.push(path)
      if (path.startsWith('/r/')) {
        res.writeHead(302, {location: path.slice(2)}).end()
        return
      }

      const f = this.files.find((x) => `/${x.name}` === path)
      if (!f) {
        res.writeHead(404).end('not found')
        return
      }

      res.writeHead(200, {'content-type': 'application/gzip', 'content-length': f.data.length})
      const cut = this.dieAfter.get(path)
      const body = cut === undefined ? f.data : f.data.subarray(0, cut)
      const finish = () => (cut === undefined ? res.end() : res.socket?.destroy())
      if (this.rate <= 0) {
        res.write(body, finish)
        return
      }

      // 10 writes a second, each of rate/10 bytes.
      const step = Math.max(1, Math.floor(this.rate / 10))
      let pos = 0
      const tick = () => {
        if (res.destroyed) return
        if (pos >= body.length) return finish()
        res.write(body.subarray(pos, pos + step))
        pos += step
        setTimeout(tick, 100)
      }

      tick()
    }

    this.server = this.tls ? https.createServer(this.tls, handler) : http.createServer(handler)
    await new Promise<void>((resolve) => {
      this.server.listen(0, '127.0.0.1', resolve)
    })
    this.port = (this.server.address() as AddressInfo).port
  }

  url(name: string, redirect = false): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}/${redirect ? 'r/' : ''}${name}`
  }

  count(name: string): number {
    return this.requests.filter((r) => r === `/${name}`).length
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve())
    })
  }
}

/** A CA and a server certificate for 127.0.0.1, made with openssl in `dir`. */
export async function throwawayCa(dir: string): Promise<{ca: string; key: string; cert: string}> {
  const p = (f: string) => join(dir, f)
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=kflan e2e throwaway CA',
  ])
  await run('openssl', ['req', ...ec, '-keyout', p('srv.key'), '-out', p('srv.csr'), '-subj', '/CN=127.0.0.1'])
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    p('srv.csr'),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-out',
    p('srv.pem'),
    '-days',
    '1',
    '-extfile',
    p('ext.cnf'),
  ])
  return {ca: p('ca.pem'), key: readFileSync(p('srv.key'), 'utf8'), cert: readFileSync(p('srv.pem'), 'utf8')}
}
