import { execFile, type ChildProcess } from 'node:child_process'
import { appendFileSync, existsSync, readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { get } from 'node:http'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { api, apiJson, upgradesToGrpc } from './api'
import { bedEnv, inPrivateMounts, sleep, spawnLogged, stopChild, waitUntilReady } from './process'

/** The engines the one integration suite runs against (testbed/ENGINES.md). */
export const FLAVOURS = [
  'docker20',
  'docker26',
  'docker26-containerd',
  'docker28',
  'docker28-containerd',
  'podman'
] as const
export type Flavour = (typeof FLAVOURS)[number]
/** How the engine keeps images: the graph driver, Docker's containerd image store, or containers/storage. */
export type ImageStore = 'overlay2' | 'containerd' | 'podman'

/** What the engine says it is, checked against the flavour asked for. */
export interface EngineInfo {
  flavour: Flavour
  /** /version Version: 20.10.24+dfsg1, 26.1.5+dfsg1, 28.5.2+dfsg4, 4.3.1. */
  version: string
  /** /version ApiVersion: the newest Docker Engine API version the engine speaks. */
  apiVersion: string
  imageStore: ImageStore
  /** The engine builds with its own BuildKit: it takes the h2c upgrade of POST /grpc (every dockerd; not Podman). */
  buildkit: boolean
}

export interface Engine {
  root: string
  host: string
  /** tcp://127.0.0.1:<port>, TLS only, when the engine was started with a TLS listener. */
  tlsHost?: string
  socket: string
  dataRoot: string
  pid: number
  info: EngineInfo
  stop(): Promise<void>
}

export interface Registry {
  address: string
  pid: number
  stop(): Promise<void>
}

/**
 * PEM files for a dockerd that also listens on a loopback TCP port with `--tlsverify`:
 * it presents cert/key and accepts only clients whose certificate ca signed.
 */
export interface TlsListener {
  ca: string
  cert: string
  key: string
}

export interface EngineOptions {
  tls?: TlsListener
}

/** Chooses the flavour; scripts/test.sh sets it once per integration run. */
export const ENGINE_ENV = 'RECLAIM_ENGINE'
export const DEFAULT_FLAVOUR: Flavour = 'docker20'

/** A docker.io package of a newer Debian suite that scripts/install-testbed.sh unpacks under dir/root. */
interface Unpacked {
  dir: string
  suite: string
}

const DOCKER26: Unpacked = { dir: process.env.RECLAIM_DOCKER26_DIR || '/opt/reclaim-testbed/docker26', suite: 'trixie' }
/** Sid's docker.io, with sid's docker-buildx unpacked beside it. */
const DOCKER28: Unpacked = { dir: process.env.RECLAIM_DOCKER28_DIR || '/opt/reclaim-testbed/docker28', suite: 'sid' }

const READY_TIMEOUT_MS = 30_000
const UNIX_PATH_MAX = 107
// dockerd uses an already running system containerd (and its /var/lib/containerd) when this socket exists.
const SYSTEM_CONTAINERD_SOCKET = '/run/containerd/containerd.sock'
const SHIM_SOCKET_DIR = '/run/containerd/s'

interface FlavourSpec {
  versionPrefix: string
  imageStore: ImageStore
  buildkit: boolean
  /** Where the dockerd comes from when it is not bookworm's own (docker20) nor podman. */
  unpacked?: Unpacked
}

const SPECS: Record<Flavour, FlavourSpec> = {
  docker20: { versionPrefix: '20.10.', imageStore: 'overlay2', buildkit: true },
  docker26: { versionPrefix: '26.', imageStore: 'overlay2', buildkit: true, unpacked: DOCKER26 },
  'docker26-containerd': { versionPrefix: '26.', imageStore: 'containerd', buildkit: true, unpacked: DOCKER26 },
  docker28: { versionPrefix: '28.', imageStore: 'overlay2', buildkit: true, unpacked: DOCKER28 },
  'docker28-containerd': { versionPrefix: '28.', imageStore: 'containerd', buildkit: true, unpacked: DOCKER28 },
  // Podman builds with buildah, through the compat API's POST /build only.
  podman: { versionPrefix: '4.3.', imageStore: 'podman', buildkit: false }
}

/**
 * From Docker 28.2 the containerd store's `/system/df` LayersSize counts the content blobs of the
 * images beside every snapshot (moby commit f07242f6d7), so a new layer counts about twice there.
 */
export function layersSizeCountsBlobs(info: EngineInfo): boolean {
  const [major, minor] = info.version.split('.').map(Number)
  return info.imageStore === 'containerd' && (major > 28 || (major === 28 && minor >= 2))
}

export function isFlavour(name: string): name is Flavour {
  return (FLAVOURS as readonly string[]).includes(name)
}

/** RECLAIM_ENGINE, or docker20 when unset; anything else is refused rather than silently replaced. */
export function flavourFromEnv(env: NodeJS.ProcessEnv = process.env): Flavour {
  const name = env[ENGINE_ENV]?.trim() || DEFAULT_FLAVOUR
  if (!isFlavour(name))
    throw new Error(`${ENGINE_ENV}=${name} is not an engine flavour: use one of ${FLAVOURS.join(', ')}`)
  return name
}

/** A short root, because containerd's sockets live under it and unix socket paths are limited to 108 bytes. */
export function makeRoot(): Promise<string> {
  return mkdtemp('/tmp/dirb-')
}

/** The given paths, each relative to root, under root. */
function pathsUnder<T extends Record<string, string>>(root: string, relative: T): { [K in keyof T]: string } {
  return Object.fromEntries(Object.entries(relative).map(([name, path]) => [name, join(root, path)])) as {
    [K in keyof T]: string
  }
}

function enginePaths(root: string) {
  return pathsUnder(root, {
    dataRoot: 'data',
    execRoot: 'x',
    socket: 'docker.sock',
    pidfile: 'docker.pid',
    config: 'daemon.json',
    log: 'dockerd.log'
  })
}

type EnginePaths = ReturnType<typeof enginePaths>

function unpackedFile(from: Unpacked, path: string): string {
  const file = join(from.dir, 'root', path)
  if (!existsSync(file))
    throw new Error(
      `${file} is missing: run scripts/install-testbed.sh, which unpacks Debian ${from.suite}'s packages there`
    )
  return file
}

function dockerdBinary(flavour: Flavour): string {
  const { unpacked } = SPECS[flavour]
  return unpacked ? unpackedFile(unpacked, 'usr/sbin/dockerd') : '/usr/sbin/dockerd'
}

/** Sid's docker-buildx, which the Scene links into its private DOCKER_CONFIG for BuildKit builds. */
export function buildxPlugin(): string {
  return unpackedFile(DOCKER28, 'usr/libexec/docker/cli-plugins/docker-buildx')
}

/**
 * The private daemon.json: the containerd image store is the one difference between the two
 * flavours of a newer dockerd. On that store BuildKit's own garbage collector is off: it runs a
 * second after a build ends, at most once a minute, and when its disk usage read lands while a
 * later build runs, that build's layer record stays `Shared: false` for the daemon's life although
 * its image holds the blob (testbed/ENGINES.md); no test could say when that happens.
 */
function daemonConfig(flavour: Flavour): object {
  if (flavour === 'docker20') return {}
  const containerd = SPECS[flavour].imageStore === 'containerd'
  return {
    features: { 'containerd-snapshotter': containerd },
    ...(containerd ? { builder: { gc: { enabled: false } } } : {})
  }
}

function tlsArgs(tls: TlsListener, port: number): string[] {
  return [
    `--host=tcp://127.0.0.1:${port}`,
    '--tlsverify',
    `--tlscacert=${tls.ca}`,
    `--tlscert=${tls.cert}`,
    `--tlskey=${tls.key}`
  ]
}

function dockerdArgs(p: EnginePaths, flavour: Flavour, tcp?: { tls: TlsListener; port: number }): string[] {
  return [
    ...(tcp ? tlsArgs(tcp.tls, tcp.port) : []),
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
    // The containerd image store picks its snapshotter (overlayfs) itself; a graph driver name would be refused.
    ...(SPECS[flavour].imageStore === 'containerd' ? [] : ['--storage-driver=overlay2'])
  ]
}

function checkPaths(p: EnginePaths): void {
  const longest = join(p.execRoot, 'containerd', 'containerd.sock.ttrpc')
  if (Buffer.byteLength(longest) > UNIX_PATH_MAX) {
    throw new Error(`engine root too long for unix sockets: ${longest} is over ${UNIX_PATH_MAX} bytes`)
  }
  if (existsSync(SYSTEM_CONTAINERD_SOCKET)) {
    throw new Error(
      `${SYSTEM_CONTAINERD_SOCKET} exists: dockerd would share that system containerd instead of starting a private one`
    )
  }
}

async function pidfilePid(pidfile: string): Promise<number | undefined> {
  const text = await readFile(pidfile, 'utf8').catch(() => '')
  return text.trim() === '' ? undefined : Number(text)
}

/** A second daemon on a live root dies at once, but the first one would answer its /_ping. */
async function refuseRootInUse(pidfile: string): Promise<void> {
  const pid = await pidfilePid(pidfile)
  if (pid !== undefined && existsSync(`/proc/${pid}`)) {
    throw new Error(`${pidfile} names running process ${pid}: this engine root is in use`)
  }
}

/** Answers only for our own daemon: the pidfile must name it before its socket is trusted. */
async function ready(pidfile: string, socket: string, pid: number): Promise<boolean> {
  if ((await pidfilePid(pidfile)) !== pid) return false
  const res = await api(socket, 'GET', '/_ping', 2_000)
  return res.status === 200 && res.body === 'OK'
}

interface VersionAnswer {
  Version: string
  ApiVersion: string
  Components?: Array<{ Name: string }>
}

interface InfoAnswer {
  Driver: string
  DriverStatus: Array<[string, string]> | null
}

/** Asks the engine what it is, and refuses an engine that is not the flavour asked for. */
export async function engineInfo(socket: string, flavour: Flavour): Promise<EngineInfo> {
  const version = await apiJson<VersionAnswer>(socket, 'GET', '/version')
  const info = await apiJson<InfoAnswer>(socket, 'GET', '/info')
  const snapshotter = (info.DriverStatus ?? []).some(
    ([k, v]) => k === 'driver-type' && v === 'io.containerd.snapshotter.v1'
  )
  const podman = (version.Components ?? []).some(c => c.Name === 'Podman Engine')
  const imageStore: ImageStore = podman ? 'podman' : snapshotter ? 'containerd' : (info.Driver as ImageStore)
  const buildkit = await upgradesToGrpc(socket)
  const found: EngineInfo = { flavour, version: version.Version, apiVersion: version.ApiVersion, imageStore, buildkit }
  const spec = SPECS[flavour]
  if (
    !found.version.startsWith(spec.versionPrefix) ||
    found.imageStore !== spec.imageStore ||
    found.buildkit !== spec.buildkit
  ) {
    const wants = `version ${spec.versionPrefix}x with the ${spec.imageStore} image store${spec.buildkit ? ' and BuildKit' : ', no BuildKit'}`
    throw new Error(`flavour ${flavour} wants ${wants}; the engine is ${JSON.stringify(found)} (driver ${info.Driver})`)
  }
  return found
}

/** Starts a private engine of the flavour (default: RECLAIM_ENGINE, else docker20) under root. */
export async function startEngine(
  root?: string,
  flavour: Flavour = flavourFromEnv(),
  opts: EngineOptions = {}
): Promise<Engine> {
  if (opts.tls && flavour === 'podman')
    throw new Error('podman system service has no TLS listener: start a dockerd flavour for a TLS endpoint')
  const dir = root ?? (await makeRoot())
  const engine = await (flavour === 'podman' ? startPodman(dir) : startDockerd(dir, flavour, opts.tls))
  recordForTeardown(engine)
  return engine
}

/** Set by the bed's globalSetup to its bed.json; engines that tests start themselves are listed beside it. */
export const BED_ENV = 'RECLAIM_TESTBED'
const STARTED_FILE = 'engines-started.jsonl'

interface StartedEngine {
  pid: number
  root: string
  flavour: Flavour
}

/**
 * A test that starts an engine of its own and times out never reaches its `finally`, and the
 * engine would outlive the run (and keep Jest from exiting). Each one is therefore written down
 * for the bed's teardown, which stops whatever is still running (stopStrayEngines).
 */
function recordForTeardown(engine: Engine): void {
  const bedFile = process.env[BED_ENV]
  if (!bedFile) return
  const entry: StartedEngine = { pid: engine.pid, root: engine.root, flavour: engine.info.flavour }
  appendFileSync(join(dirname(bedFile), STARTED_FILE), `${JSON.stringify(entry)}\n`)
}

function running(pid: number, root: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    if (/^\d+ \(.*\) Z /.test(stat)) return false
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(root)
  } catch {
    return false
  }
}

/**
 * Stops, by pid, every engine a test started under this bed and left running, with its
 * containerd, shims, conmons and containers, and removes its root. Returns what it stopped.
 */
export async function stopStrayEngines(bedRoot: string): Promise<string[]> {
  const text = await readFile(join(bedRoot, STARTED_FILE), 'utf8').catch(() => '')
  const stopped: string[] = []
  for (const line of text.split('\n').filter(Boolean)) {
    const { pid, root, flavour } = JSON.parse(line) as StartedEngine
    if (!running(pid, root)) continue
    process.kill(pid, 'SIGTERM')
    const deadline = Date.now() + 20_000
    while (running(pid, root) && Date.now() < deadline) await sleep(100)
    if (running(pid, root)) process.kill(pid, 'SIGKILL')
    while (running(pid, root)) await sleep(100)
    if (flavour === 'podman') {
      const p = podmanPaths(root)
      await killLeftovers(p.dataRoot, p.runRoot, p.tmp)
      await deleteRuncLeftovers(p.runtimeRoot)
      await unmountUnder(root)
    } else {
      await killLeftovers(enginePaths(root).execRoot)
    }
    const mounts = mountsUnder(root, await readFile('/proc/self/mountinfo', 'utf8'))
    if (mounts.length === 0) await rm(root, { recursive: true, force: true })
    stopped.push(
      `${flavour} engine ${pid} under ${root}${mounts.length > 0 ? ' (root left in place: still mounted)' : ''}`
    )
  }
  return stopped
}

async function startDockerd(dir: string, flavour: Flavour, tls?: TlsListener): Promise<Engine> {
  const p = enginePaths(dir)
  const binary = dockerdBinary(flavour)
  checkPaths(p)
  await mkdir(dir, { recursive: true })
  await refuseRootInUse(p.pidfile)
  await writeFile(p.config, `${JSON.stringify(daemonConfig(flavour))}\n`)
  const tcp = tls ? { tls, port: await freePort() } : undefined
  const child = spawnLogged(binary, dockerdArgs(p, flavour, tcp), p.log)
  const stop = async (): Promise<void> => {
    await stopChild(child, 'dockerd')
    await killLeftovers(p.execRoot)
  }
  const tlsHost = tcp ? `tcp://127.0.0.1:${tcp.port}` : undefined
  return engineOnceReady(child, 'dockerd', flavour, { ...p, root: dir, tlsHost, stop })
}

function podmanPaths(root: string) {
  return pathsUnder(root, {
    dataRoot: 'data',
    runRoot: 'run',
    // Bound over /var/lib/containers and /run/runc in the service's own mount namespace (see below).
    shadowVarLib: 'shadow/var-lib-containers',
    runtimeRoot: 'shadow/run-runc',
    tmp: 'tmp',
    cni: 'cni',
    home: 'home',
    socket: 'podman.sock',
    pidfile: 'podman.pid',
    containersConf: 'containers.conf',
    storageConf: 'storage.conf',
    registriesConf: 'registries.conf',
    authFile: 'auth.json',
    events: 'events.log',
    log: 'podman.log'
  })
}

type PodmanPaths = ReturnType<typeof podmanPaths>

const toml = (value: string | string[]): string => JSON.stringify(value)

/**
 * Every path podman would otherwise take from the machine (/var/lib/containers, /run/containers,
 * /run/libpod, /etc/cni/net.d, /dev/shm locks, /run/runc) is set to a place under the bed root.
 */
async function writePodmanConfig(p: PodmanPaths): Promise<void> {
  await writeFile(
    p.containersConf,
    [
      '[containers]',
      // Without these, runc cannot set the rlimits podman asks for by default on this machine.
      `default_ulimits = ${toml(['nofile=1024:1024', 'nproc=1024:1024'])}`,
      // A container that asks for no network gets none; nothing the bed starts has one beyond loopback.
      'netns = "none"',
      '[network]',
      'network_backend = "cni"',
      `network_config_dir = ${toml(p.cni)}`,
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = ${toml(p.events)}`,
      // File locks under tmp_dir instead of the machine-wide /dev/shm/libpod_lock segment.
      'lock_type = "file"',
      `tmp_dir = ${toml(p.tmp)}`,
      `static_dir = ${toml(join(p.dataRoot, 'libpod'))}`,
      `volume_path = ${toml(join(p.dataRoot, 'volumes'))}`,
      `image_copy_tmp_dir = ${toml(p.tmp)}`,
      'runtime = "runc"',
      ''
    ].join('\n')
  )
  await writeFile(
    p.storageConf,
    ['[storage]', 'driver = "overlay"', `runroot = ${toml(p.runRoot)}`, `graphroot = ${toml(p.dataRoot)}`, ''].join(
      '\n'
    )
  )
  // No search registries: a short name never resolves to a remote registry, so nothing is ever pulled.
  // 127.0.0.1 (any port) is plain HTTP, like Docker's default for loopback registries.
  await writeFile(
    p.registriesConf,
    [
      'unqualified-search-registries = []',
      'short-name-mode = "enforcing"',
      '',
      '[[registry]]',
      'location = "127.0.0.1"',
      'insecure = true',
      ''
    ].join('\n')
  )
  await writeFile(p.authFile, '{}\n')
}

/** The podman service's environment: its private configuration files and nothing of root's own. */
function podmanEnv(p: PodmanPaths): Record<string, string> {
  return {
    CONTAINERS_CONF: p.containersConf,
    CONTAINERS_STORAGE_CONF: p.storageConf,
    CONTAINERS_REGISTRIES_CONF: p.registriesConf,
    REGISTRY_AUTH_FILE: p.authFile,
    HOME: p.home,
    XDG_CONFIG_HOME: join(p.home, '.config'),
    XDG_DATA_HOME: join(p.home, '.local', 'share'),
    TMPDIR: p.tmp
  }
}

function podmanArgs(p: PodmanPaths): string[] {
  return [
    `--root=${p.dataRoot}`,
    `--runroot=${p.runRoot}`,
    '--storage-driver=overlay',
    '--cgroup-manager=cgroupfs',
    '--events-backend=file',
    `--tmpdir=${p.tmp}`,
    `--network-config-dir=${p.cni}`,
    '--network-backend=cni',
    '--runtime=runc',
    'system',
    'service',
    '--time=0',
    `unix://${p.socket}`
  ]
}

/**
 * Podman 4.3 still writes to two machine-wide places whatever its configuration says: the build,
 * load and push paths of the compat API keep containers/image's blob-info cache in
 * /var/lib/containers/cache, and runc calls that podman makes without its runtime flags (container
 * cleanup) use /run/runc. The service therefore runs in a mount namespace of its own in which our
 * private directories are bound over those two, so nothing it does reaches the machine's.
 * Its overlay mounts live and die in that namespace too.
 */
const PODMAN_NAMESPACE_SCRIPT = [
  'set -e',
  'mount --bind "$1" /var/lib/containers',
  'mount --bind "$2" /run/runc',
  'shift 2',
  'exec /usr/bin/podman "$@"'
].join('\n')
const SHADOWED = ['/var/lib/containers', '/run/runc']

/**
 * Mount points must exist: an empty directory is made where none is, and left there. Removing it
 * would detach the binds of every other bed's podman still running (rmdir of a mount point
 * lazily unmounts it in all namespaces), and that podman would then write to the machine's own.
 */
async function makeMountPoints(): Promise<void> {
  for (const point of SHADOWED) await mkdir(point, { recursive: true, mode: 0o700 })
}

/** Waits for a service this bed started to answer on its socket, with its pidfile naming it. */
function untilReady(
  child: ChildProcess,
  name: string,
  p: { log: string; pidfile: string; socket: string }
): Promise<void> {
  return waitUntilReady(child, name, p.log, () => ready(p.pidfile, p.socket, child.pid as number), READY_TIMEOUT_MS)
}

/** The engine a started service is, once it answers; a service that never does is stopped. */
async function engineOnceReady(
  child: ChildProcess,
  name: string,
  flavour: Flavour,
  e: Pick<Engine, 'root' | 'tlsHost' | 'dataRoot' | 'socket' | 'stop'> & { log: string; pidfile: string }
): Promise<Engine> {
  try {
    await untilReady(child, name, e)
    const info = await engineInfo(e.socket, flavour)
    const { root, tlsHost, socket, dataRoot, stop } = e
    return { root, host: `unix://${socket}`, tlsHost, socket, dataRoot, pid: child.pid as number, info, stop }
  } catch (err) {
    await e.stop()
    throw err
  }
}

async function startPodman(dir: string): Promise<Engine> {
  const p = podmanPaths(dir)
  await mkdir(dir, { recursive: true })
  await refuseRootInUse(p.pidfile)
  // The pidfile named no live process: a socket left behind is a killed service's, not another's.
  await rm(p.socket, { force: true })
  for (const d of [p.tmp, p.cni, p.home, p.runRoot, p.shadowVarLib, p.runtimeRoot]) await mkdir(d, { recursive: true })
  await writePodmanConfig(p)
  await makeMountPoints()
  const args = inPrivateMounts(PODMAN_NAMESPACE_SCRIPT, 'podman-ns', p.shadowVarLib, p.runtimeRoot, ...podmanArgs(p))
  const child = spawnLogged('/usr/bin/unshare', args, p.log, podmanEnv(p))
  // podman system service writes no pidfile; ours names the child so that ready() trusts only its socket.
  if (child.pid !== undefined) await writeFile(p.pidfile, String(child.pid))
  const stop = async (): Promise<void> => {
    await removePodmanContainers(p.socket, child)
    await stopChild(child, 'podman')
    await killLeftovers(p.dataRoot, p.runRoot, p.tmp)
    await deleteRuncLeftovers(p.runtimeRoot)
    await unmountUnder(dir)
  }
  return engineOnceReady(child, 'podman', 'podman', { ...p, root: dir, stop })
}

/**
 * The podman service leaves containers running when it exits (conmon keeps them): remove them
 * while it still answers.
 */
async function removePodmanContainers(socket: string, child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const res = await api(socket, 'GET', '/containers/json?all=1', 10_000).catch(() => undefined)
  if (res?.status !== 200) return
  for (const c of JSON.parse(res.body) as Array<{ Id: string }>) {
    await api(socket, 'DELETE', `/containers/${c.Id}?force=1&v=1`, 30_000).catch(() => undefined)
  }
}

/** Containers whose conmon died with them unremoved: runc still knows them under our private runtime root. */
async function deleteRuncLeftovers(runtimeRoot: string): Promise<void> {
  const ids = await readdir(runtimeRoot).catch(() => [] as string[])
  for (const id of ids) {
    await new Promise<void>(resolve =>
      execFile('/usr/bin/runc', [`--root=${runtimeRoot}`, 'delete', '--force', id], { env: bedEnv() }, () => resolve())
    )
  }
}

/** Mounts a killed podman left under its own root, deepest first; never anything outside it. */
async function unmountUnder(root: string): Promise<void> {
  const points = mountsUnder(root, await readFile('/proc/self/mountinfo', 'utf8')).sort((a, b) => b.length - a.length)
  for (const point of points) {
    await new Promise<void>(resolve => execFile('/usr/bin/umount', [point], { env: bedEnv() }, () => resolve()))
  }
}

export function mountsUnder(root: string, mountinfo: string): string[] {
  return mountinfo
    .split('\n')
    .map(line => line.split(' ')[4] ?? '')
    .filter(point => point === root || point.startsWith(`${root}/`))
}

/** Processes with an argument that is one of dirs or a path under one (also as --flag=<dir>). */
async function processesUnder(dirs: string[]): Promise<Array<{ pid: number; argv: string[] }>> {
  const ours = (arg: string): boolean => dirs.some(d => arg === d || arg.endsWith(`=${d}`) || arg.includes(`${d}/`))
  const pids = (await readdir('/proc')).filter(d => /^\d+$/.test(d)).map(Number)
  const hits: Array<{ pid: number; argv: string[] }> = []
  for (const pid of pids.filter(pid => pid !== process.pid)) {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0')
    if (argv.some(ours)) hits.push({ pid, argv })
  }
  return hits
}

/**
 * containerd 1.6 names a shim's socket after sha256(<containerd address>/<namespace>/<id>); a
 * killed shim leaves it.
 */
function shimSocket(argv: string[]): string | undefined {
  const flag = (name: string): string | undefined => argv[argv.indexOf(name) + 1]
  const [address, namespace, id] = [flag('-address'), flag('-namespace'), flag('-id')]
  if (!argv[0].includes('containerd-shim') || !address || !namespace || !id) return undefined
  return join(
    SHIM_SOCKET_DIR,
    createHash('sha256')
      .update(join(address, namespace, id))
      .digest('hex')
  )
}

/**
 * A killed dockerd leaves its containerd and shims behind, a killed podman its conmons and
 * cleanup processes; they are ours because their command lines name this engine's private
 * directories (dockerd's exec-root; podman's root, run root and tmp dir), which nothing else uses.
 */
async function killLeftovers(...dirs: string[]): Promise<void> {
  const leftovers = await processesUnder(dirs)
  for (const { pid } of leftovers) process.kill(pid, 'SIGKILL')
  const deadline = Date.now() + 10_000
  while (leftovers.some(({ pid }) => existsSync(`/proc/${pid}`))) {
    if (Date.now() > deadline)
      throw new Error(`processes under ${dirs.join(', ')} survived SIGKILL: ${leftovers.map(l => l.pid).join(', ')}`)
    await sleep(100)
  }
  for (const { argv } of leftovers) {
    const socket = shimSocket(argv)
    if (socket !== undefined) await rm(socket, { force: true })
  }
}

export async function freePort(): Promise<number> {
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
