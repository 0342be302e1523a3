/**
 * Containers and data-plane probes on lab hosts (real dockerd, the lab's busybox image), for the
 * dataplane, faults, firewalld and flannel-v2 e2e tests. Every figure a test measures is printed
 * (console.log) with the flannel and etcd versions it ran against; nothing here asserts timing.
 */
import {readFileSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'
import {expect} from 'vitest'

import {kflan, parseEnv} from './kflan-helpers.js'
import {LAB, sshExec} from './lab-helpers.js'

/** The image the lab loads into every host's docker (test/lab/lab.sh BUSYBOX_IMAGE). */
export const IMAGE = 'kflan-lab/busybox:1'

/** flannel and etcd versions of the running lab's inventory, and the flanneld binary's own word. */
export async function versions(node: string): Promise<{flannel: string; etcd: string; flanneld: string}> {
  const inv = readFileSync(LAB.inventory, 'utf8')
  const flannel = /flannel:\n\s+version: "?([0-9.]+)"?/.exec(inv)?.[1] ?? '?'
  const etcd = /etcd:\n\s+version: "?([0-9.]+)"?/.exec(inv)?.[1] ?? '?'
  // flanneld --version prints to stderr.
  const r = await sshExec(node, '/opt/flannel/bin/flanneld --version 2>&1', {check: false})
  return {flannel, etcd, flanneld: r.stdout.trim()}
}

export interface Container {
  host: string
  name: string
  ip: string
  mtu: number
}

/** Starts a long-running busybox container (sleep) and reads its eth0 address and MTU. */
export async function startContainer(host: string, name: string, cmd = 'sleep 86400', extra = ''): Promise<Container> {
  await sshExec(host, `docker rm -f ${name} >/dev/null 2>&1; docker run -d --name ${name} ${extra} ${IMAGE} ${cmd}`)
  return inspectContainer(host, name)
}

export async function inspectContainer(host: string, name: string): Promise<Container> {
  const r = await sshExec(host, `docker exec ${name} sh -c 'ip -4 -o addr show dev eth0; cat /sys/class/net/eth0/mtu'`)
  const ip = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout)?.[1]
  if (!ip) throw new Error(`${host}/${name}: no eth0 address in ${r.stdout}`)
  return {host, name, ip, mtu: Number(r.stdout.trim().split('\n').at(-1))}
}

/** docker's view of a container: running, and when it (re)started. */
export async function containerState(
  host: string,
  name: string,
): Promise<{running: boolean; startedAt: string; restarts: number}> {
  const r = await sshExec(host, `docker inspect -f '{{.State.Running}} {{.State.StartedAt}} {{.RestartCount}}' ${name}`)
  const [running, startedAt, restarts] = r.stdout.trim().split(' ')
  return {running: running === 'true', startedAt, restarts: Number(restarts)}
}

/** busybox ping from a container: transmitted and received. */
export async function ping(
  from: Container,
  to: string,
  count = 3,
): Promise<{sent: number; received: number; out: string}> {
  const r = await sshExec(from.host, `docker exec ${from.name} ping -c ${count} -W 2 ${to}`, {
    check: false,
    timeoutMs: 60_000,
  })
  return {...parsePing(r.stdout), out: r.stdout + r.stderr}
}

export function parsePing(out: string): {sent: number; received: number} {
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(out)
  return m ? {sent: Number(m[1]), received: Number(m[2])} : {sent: 0, received: 0}
}

/** Starts `count` pings `intervalS` apart in the background on the container's host; wait() returns the counts. */
export async function backgroundPing(
  from: Container,
  to: string,
  count: number,
  intervalS = 0.2,
): Promise<{wait: () => Promise<{sent: number; received: number; out: string}>}> {
  const log = `/tmp/kflan-ping-${from.name}.log`
  await sshExec(
    from.host,
    `rm -f ${log}; nohup docker exec ${from.name} ping -c ${count} -i ${intervalS} -W 1 ${to} >${log} 2>&1 </dev/null &`,
  )
  return {
    async wait() {
      let out = ''
      await secondsUntil(
        async () => /packets transmitted/.test((out = (await sshExec(from.host, `cat ${log}`)).stdout)),
        count * intervalS + 30,
        500,
      )
      return {...parsePing(out), out}
    },
  }
}

/** A busybox httpd in a container (or on a host's network with --network host) whose CGI echoes REMOTE_ADDR. */
export async function startEchoServer(
  host: string,
  name: string,
  port: number,
  hostNetwork = false,
): Promise<Container | undefined> {
  const cgi = Buffer.from('#!/bin/sh\necho Content-Type: text/plain\necho\necho "$REMOTE_ADDR"\n').toString('base64')
  const script = `mkdir -p /www/cgi-bin && echo ${cgi} | base64 -d >/www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p ${port} -h /www`
  await sshExec(
    host,
    `docker rm -f ${name} >/dev/null 2>&1; docker run -d --name ${name} ${hostNetwork ? '--network host' : ''} ${IMAGE} sh -c '${script}'`,
  )
  return hostNetwork ? undefined : inspectContainer(host, name)
}

/**
 * The source address a server saw for a request from a container: an HTTP/1.0 GET through
 * busybox nc (busybox-static's wget segfaults in these containers), the CGI's last line, with
 * httpd's IPv4-mapped form ([::ffff:10.244.19.2]) unwrapped.
 */
export async function sourceSeenBy(from: Container, address: string, port: number): Promise<string> {
  for (let i = 0; ; i++) {
    const r = await sshExec(
      from.host,
      `docker exec ${from.name} sh -c 'printf "GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n" | nc -w 3 ${address} ${port}'`,
      {check: false, timeoutMs: 30_000},
    )
    const last = r.stdout.trim().split('\n').at(-1)?.trim() ?? ''
    const m = /^\[?(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)\]?$/.exec(last)
    if (r.stdout.startsWith('HTTP/1.') && m) return m[1]
    if (i >= 10)
      throw new Error(
        `${from.host}/${from.name}: GET http://${address}:${port}/cgi-bin/ip failed: ${r.stdout}${r.stderr}`,
      )
    await sleep(500)
  }
}

export async function subnetEnv(host: string): Promise<Record<string, string>> {
  return parseEnv((await sshExec(host, 'cat /run/flannel/subnet.env')).stdout)
}

/** a.b.c.d inside a.b.c.1/len (FLANNEL_SUBNET). */
export function inSubnet(ip: string, subnet: string): boolean {
  const [base, len] = subnet.split('/')
  const n = (s: string) => s.split('.').reduce((a, x) => (a << 8) + Number(x), 0) >>> 0
  const mask = Number(len) === 0 ? 0 : (0xff_ff_ff_ff << (32 - Number(len))) >>> 0
  return (n(ip) & mask) >>> 0 === (n(base) & mask) >>> 0
}

/** Polls until check() is true; returns the seconds it took, or undefined on timeout. */
export async function secondsUntil(
  check: () => Promise<boolean>,
  timeoutS: number,
  intervalMs = 250,
): Promise<number | undefined> {
  const t0 = Date.now()
  for (;;) {
    if (await check()) return (Date.now() - t0) / 1000
    if (Date.now() - t0 > timeoutS * 1000) return undefined
    await sleep(intervalMs)
  }
}

/** The cluster is whole: a container pings another across nodes, doctor is green, a re-run of init changes nothing. */
export async function expectWhole(
  label: string,
  a: Container,
  b: Container,
  inventory: string,
  state: string,
): Promise<void> {
  const p = await ping(a, b.ip)
  console.log(`${label}: ${a.host}/${a.name} → ${b.host} ${b.ip}: ${p.received}/${p.sent}`)
  expect(p.received, p.out).toBe(3)
  const d = await kflan(['doctor', '-i', inventory, '--state-dir', state, '--problems'])
  expect(d.code, d.stdout).toBe(0)
  const again = await kflan(['init', '-i', inventory, '--state-dir', state])
  expect(again.stdout).toContain('nothing changed')
}
