import { existsSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { get } from 'node:http'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { api } from './api'
import { sleep, spawnLogged, stopChild, waitUntilReady } from './process'

export interface Engine {
  root: string
  host: string
  socket: string
  dataRoot: string
  pid: number
  stop(): Promise<void>
}

export interface Registry {
  address: string
  pid: number
  stop(): Promise<void>
}

const READY_TIMEOUT_MS = 30_000
const UNIX_PATH_MAX = 107
// dockerd uses an already running system containerd (and its /var/lib/containerd) when this socket exists.
const SYSTEM_CONTAINERD_SOCKET = '/run/containerd/containerd.sock'
const SHIM_SOCKET_DIR = '/run/containerd/s'

/** A short root, because containerd's sockets live under it and unix socket paths are limited to 108 bytes. */
export function makeRoot(): Promise<string> {
  return mkdtemp('/tmp/dirb-')
}

function enginePaths(root: string) {
  return {
    dataRoot: join(root, 'data'),
    execRoot: join(root, 'x'),
    socket: join(root, 'docker.sock'),
    pidfile: join(root, 'docker.pid'),
    config: join(root, 'daemon.json'),
    log: join(root, 'dockerd.log')
  }
}

type EnginePaths = ReturnType<typeof enginePaths>

function dockerdArgs(p: EnginePaths): string[] {
  return [
    `--data-root=${p.dataRoot}`,
    `--exec-root=${p.execRoot}`,
    `--host=unix://${p.socket}`,
    `--pidfile=${p.pidfile}`,
    `--config-file=${p.config}`,
    '--bridge=none',
    '--iptables=false',
    '--ip6tables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--storage-driver=overlay2'
  ]
}

function checkPaths(p: EnginePaths): void {
  const longest = join(p.execRoot, 'containerd', 'containerd.sock.ttrpc')
  if (Buffer.byteLength(longest) > UNIX_PATH_MAX) {
    throw new Error(`engine root too long for unix sockets: ${longest} is over ${UNIX_PATH_MAX} bytes`)
  }
  if (existsSync(SYSTEM_CONTAINERD_SOCKET)) {
    throw new Error(`${SYSTEM_CONTAINERD_SOCKET} exists: dockerd would share that system containerd instead of starting a private one`)
  }
}

async function pidfilePid(pidfile: string): Promise<number | undefined> {
  const text = await readFile(pidfile, 'utf8').catch(() => '')
  return text.trim() === '' ? undefined : Number(text)
}

/** A second dockerd on a live root dies at once, but the first one would answer its /_ping. */
async function refuseRootInUse(p: EnginePaths): Promise<void> {
  const pid = await pidfilePid(p.pidfile)
  if (pid !== undefined && existsSync(`/proc/${pid}`)) {
    throw new Error(`${p.pidfile} names running process ${pid}: this engine root is in use`)
  }
}

/** Answers only for our own dockerd: the pidfile must name it before its socket is trusted. */
async function ready(p: EnginePaths, pid: number): Promise<boolean> {
  if ((await pidfilePid(p.pidfile)) !== pid) return false
  const res = await api(p.socket, 'GET', '/_ping', 2_000)
  return res.status === 200 && res.body === 'OK'
}

export async function startEngine(root?: string): Promise<Engine> {
  const dir = root ?? (await makeRoot())
  const p = enginePaths(dir)
  checkPaths(p)
  await mkdir(dir, { recursive: true })
  await refuseRootInUse(p)
  await writeFile(p.config, '{}\n')
  const child = spawnLogged('/usr/sbin/dockerd', dockerdArgs(p), p.log)
  const stop = async (): Promise<void> => {
    await stopChild(child, 'dockerd')
    await killLeftovers(p.execRoot)
  }
  try {
    await waitUntilReady(child, 'dockerd', p.log, () => ready(p, child.pid as number), READY_TIMEOUT_MS)
  } catch (err) {
    await stop()
    throw err
  }
  return { root: dir, host: `unix://${p.socket}`, socket: p.socket, dataRoot: p.dataRoot, pid: child.pid as number, stop }
}

async function processesMentioning(needle: string): Promise<Array<{ pid: number; argv: string[] }>> {
  const pids = (await readdir('/proc')).filter(d => /^\d+$/.test(d)).map(Number)
  const hits: Array<{ pid: number; argv: string[] }> = []
  for (const pid of pids.filter(pid => pid !== process.pid)) {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0')
    if (argv.some(arg => arg.includes(needle))) hits.push({ pid, argv })
  }
  return hits
}

/** containerd 1.6 names a shim's socket after sha256(<containerd address>/<namespace>/<id>); a killed shim leaves it. */
function shimSocket(argv: string[]): string | undefined {
  const flag = (name: string): string | undefined => argv[argv.indexOf(name) + 1]
  const [address, namespace, id] = [flag('-address'), flag('-namespace'), flag('-id')]
  if (!argv[0].includes('containerd-shim') || !address || !namespace || !id) return undefined
  return join(SHIM_SOCKET_DIR, createHash('sha256').update(join(address, namespace, id)).digest('hex'))
}

/**
 * A killed dockerd leaves its containerd and shims behind; they are ours because their command
 * lines name this engine's private exec-root, which nothing else uses.
 */
async function killLeftovers(execRoot: string): Promise<void> {
  const leftovers = await processesMentioning(`${execRoot}/`)
  for (const { pid } of leftovers) process.kill(pid, 'SIGKILL')
  const deadline = Date.now() + 10_000
  while (leftovers.some(({ pid }) => existsSync(`/proc/${pid}`))) {
    if (Date.now() > deadline) throw new Error(`processes under ${execRoot} survived SIGKILL: ${leftovers.map(l => l.pid).join(', ')}`)
    await sleep(100)
  }
  for (const { argv } of leftovers) {
    const socket = shimSocket(argv)
    if (socket !== undefined) await rm(socket, { force: true })
  }
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  await new Promise<void>(resolve => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no TCP port from listen(0)')
  return address.port
}

function registryUp(address: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port: Number(address.split(':')[1]), path: '/v2/', timeout: 2_000 }, res => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
  })
}

export async function startRegistry(root: string): Promise<Registry> {
  const dir = join(root, 'registry')
  await mkdir(dir, { recursive: true })
  const address = `127.0.0.1:${await freePort()}`
  const config = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: join(dir, 'data') }, delete: { enabled: true } },
    http: { addr: address }
  }
  const configFile = join(dir, 'config.yml')
  // JSON is YAML, so no YAML writer is needed.
  await writeFile(configFile, JSON.stringify(config, null, 2))
  const log = join(dir, 'registry.log')
  const child = spawnLogged('/usr/bin/docker-registry', ['serve', configFile], log)
  const stop = async (): Promise<void> => {
    await stopChild(child, 'docker-registry')
  }
  try {
    await waitUntilReady(child, 'docker-registry', log, () => registryUp(address), READY_TIMEOUT_MS)
  } catch (err) {
    await stop()
    throw err
  }
  return { address, pid: child.pid as number, stop }
}
