/**
 * The benchmark's machinery: a private engine whose data root can be put back to a saved state
 * between timed runs, whole-process timing (GNU time for the peak RSS), the action run in the
 * environment testbed/runner.ts builds, and the docker CLI against the same private engine.
 */
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, totalmem, release, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { api, apiJson } from '../testbed/api'
import { removeRoot } from '../testbed/bed'
import { flavourFromEnv, makeRoot, startEngine, type Engine, type Flavour } from '../testbed/engine'
import { bedEnv } from '../testbed/process'
import { REPO_ROOT, runBundle, runnerEnv } from '../testbed/runner'

export { runnerEnv }

export const BENCH_DIR = join(REPO_ROOT, 'bench')
export const DOCKER = '/usr/bin/docker'
export const GNU_TIME = '/usr/bin/time'
/** The action measured: dist/index.js, or a bundle built elsewhere (`BENCH_BUNDLE`) so dist/ stays as committed. */
export const BUNDLE = resolve(process.env.BENCH_BUNDLE || join(REPO_ROOT, 'dist', 'index.js'))
/** Data-root snapshots and the docker-save archive are kept here across runs: they are slow to make. */
export const CACHE_DIR = process.env.BENCH_CACHE || '/var/tmp/docker-image-reclaim-bench'

const RUN_TIMEOUT_MS = 10 * 60_000

// ---------------------------------------------------------------- small utilities

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** The 1-minute load average: the machine is shared, and this says how busy it was. */
export function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])
}

export async function timeIt<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint()
  const value = await work()
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value }
}

export function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { env: env ?? bedEnv(), maxBuffer: 256 << 20, timeout: RUN_TIMEOUT_MS },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${err.message}\n${stderr}`))
        else resolve(stdout.trim())
      }
    )
  })
}

// ---------------------------------------------------------------- the machine

export interface Machine {
  nproc: number
  cpuModel: string
  memoryGiB: number
  kernel: string
  node: string
  dockerd: string
  engineApi?: string
  engineVersion?: string
  cli: string
  gnuTime: string
  /** dist/ is rebuilt between runs, by us and by others, so the results name the exact build measured. */
  bundleSha256: string
  bundleMtime: string
  date: string
}

export async function machine(): Promise<Machine> {
  return {
    nproc: Number(await run('nproc', [])),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${await run('uname', ['-s'])} ${release()}`,
    node: process.version,
    dockerd: await run('/usr/sbin/dockerd', ['--version']),
    cli: await run(DOCKER, ['--version']),
    gnuTime: (
      await run(GNU_TIME, ['--version']).catch(err => `missing (${(err as Error).message.split('\n')[0]})`)
    ).split('\n')[0],
    bundleSha256: createHash('sha256').update(readFileSync(BUNDLE)).digest('hex'),
    bundleMtime: statSync(BUNDLE).mtime.toISOString(),
    date: new Date().toISOString()
  }
}

/** GNU time gives the peak RSS of a process tree; Debian ships it in the `time` package. Installs it if missing. */
export async function ensureGnuTime(): Promise<string | undefined> {
  const version = await run(GNU_TIME, ['--version']).catch(() => '')
  if (/GNU/i.test(version)) return undefined
  log(`${GNU_TIME} is missing or not GNU time: apt-get install -y time`)
  const env = { ...bedEnv(), DEBIAN_FRONTEND: 'noninteractive' }
  await run('apt-get', ['install', '-y', '--no-install-recommends', 'time'], env).catch(async () => {
    await run('apt-get', ['update'], env)
    await run('apt-get', ['install', '-y', '--no-install-recommends', 'time'], env)
  })
  return 'installed Debian package "time" for /usr/bin/time'
}

// ---------------------------------------------------------------- the private engine

/**
 * One private engine (testbed startEngine) whose data root can be saved and put back. Copying a
 * data root back and restarting is far quicker than loading the images again, and every
 * destructive run then starts from the same bytes on disk.
 */
export class Bed {
  private engine: Engine | undefined
  private data = ''
  private constructor(
    readonly root: string,
    readonly flavour: Flavour
  ) {}

  /** The flavour RECLAIM_ENGINE names unless one is given (bench/watch.ts defaults to docker28). */
  static async start(flavour: Flavour = flavourFromEnv()): Promise<Bed> {
    const bed = new Bed(await makeRoot(), flavour)
    await bed.up()
    return bed
  }

  private get current(): Engine {
    if (!this.engine) throw new Error('the private engine is not running')
    return this.engine
  }
  /** Host, socket and data root stay the same across restarts: they follow from the root. */
  get host(): string {
    return this.current.host
  }
  get socket(): string {
    return this.current.socket
  }
  get dataRoot(): string {
    return this.current.dataRoot
  }
  get pid(): number {
    return this.current.pid
  }
  /** Flavour, version and image store, as testbed/engine.ts found them. */
  get info(): Engine['info'] {
    return this.current.info
  }

  /** DOCKER_HOST and a private DOCKER_CONFIG for /usr/bin/docker; no inherited DOCKER_* (context, TLS). */
  cliEnv(): NodeJS.ProcessEnv {
    const inherited = Object.entries(bedEnv()).filter(([k]) => !k.startsWith('DOCKER_'))
    return { ...Object.fromEntries(inherited), DOCKER_HOST: this.host, DOCKER_CONFIG: join(this.root, 'docker-config') }
  }

  private async up(): Promise<void> {
    await mkdir(join(this.root, 'docker-config'), { recursive: true })
    this.engine = await startEngine(this.root, this.flavour)
    this.data = this.engine.dataRoot
  }

  private async down(): Promise<void> {
    const engine = this.engine
    this.engine = undefined
    await engine?.stop()
  }

  /**
   * Puts the data root back to a snapshot and restarts the engine on it; returns the milliseconds
   * it took. The copy is made of hard links, which is much quicker than copying the files. That is
   * safe because the engine never writes an image's files in place: it writes new files and renames
   * them, and deletes whole directories, so the snapshot's inodes are left as they were. The bolt
   * databases it does write in place are copied for real. snapshotFingerprint() checks all this.
   */
  async restore(snapshot: string): Promise<number> {
    const { ms } = await timeIt(async () => {
      await this.down()
      await removeRoot(this.data)
      await run('cp', ['-al', join(snapshot, 'data'), this.data])
      const inPlace = (await run('find', [join(snapshot, 'data'), '-type', 'f', '-name', '*.db', '-printf', '%P\n']))
        .split('\n')
        .filter(Boolean)
      for (const file of inPlace)
        await run('cp', ['-a', '--remove-destination', join(snapshot, 'data', file), join(this.data, file)])
      // The copy's dirty pages go to disk now, not during the timed run, where every fsync the
      // engine makes (one per untag) would wait for their write-back.
      await run('sync', [])
      await this.up()
      await this.warm()
    })
    return ms
  }

  /** An empty engine, as a fresh data root. */
  async reset(): Promise<number> {
    const { ms } = await timeIt(async () => {
      await this.down()
      await removeRoot(this.data)
      await this.up()
    })
    return ms
  }

  async snapshot(to: string, meta: object): Promise<void> {
    await this.down()
    await rm(to, { recursive: true, force: true })
    await mkdir(to, { recursive: true })
    await run('cp', ['-a', this.data, join(to, 'data')])
    await writeFile(
      join(to, 'meta.json'),
      JSON.stringify({ ...meta, fingerprint: await snapshotFingerprint(to) }, null, 2)
    )
    await this.up()
  }

  /**
   * After a restart the engine reads its image records from disk for the first list; asking here,
   * untimed, means neither side of the next run pays for that.
   */
  async warm(): Promise<void> {
    await api(this.socket, 'GET', '/images/json?all=1')
    await api(this.socket, 'GET', '/containers/json?all=1')
  }

  async imageCount(repo?: string): Promise<number> {
    const list = await apiJson<{ RepoTags: string[] | null }[]>(this.socket, 'GET', '/images/json?all=1')
    return repo === undefined
      ? list.length
      : list.filter(i => (i.RepoTags ?? []).some(t => t.startsWith(`${repo}:`))).length
  }

  async engineVersion(): Promise<{ Version: string; ApiVersion: string }> {
    return apiJson(this.socket, 'GET', '/version')
  }

  async stop(): Promise<void> {
    await this.down()
    await removeRoot(this.root)
  }
}

/**
 * Every file of a snapshot with its size, mtime and inode, hashed: a restore that wrote through a
 * hard link into the snapshot would change it.
 */
export async function snapshotFingerprint(snapshot: string): Promise<string> {
  const list = await run('find', [join(snapshot, 'data'), '-type', 'f', '-printf', '%P %s %T@ %i\n'])
  return createHash('sha256').update(list.split('\n').sort().join('\n')).digest('hex')
}

/** Stops the engine on Ctrl-C or SIGTERM too, so no dockerd outlives the benchmark. */
export function stopOnSignals(beds: () => Array<Bed | undefined>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the private engines`)
      killActive()
      const stops = beds().map(b => b?.stop().catch(() => undefined))
      void Promise.all(stops).finally(() => process.exit(130))
    })
  }
}

// ---------------------------------------------------------------- whole-process timing

export interface Sample {
  /** Spawn to exit, measured by this process. */
  ms: number
  /** Peak RSS of the process tree (GNU time %M: the largest of the process and its waited-for children). */
  maxRssKb: number
  code: number
  stdout: string
  stderr: string
}

const active = new Set<number>()

/** Kills the process groups of timed runs still going (only ours: each run is its own group). */
function killActive(): void {
  for (const pgid of active) {
    try {
      process.kill(-pgid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

/** Runs `command` under GNU time and times it from spawn to exit. */
export async function timed(
  command: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; cwd?: string }
): Promise<Sample> {
  const dir = await mkdtemp(join(tmpdir(), 'dirb-bench-t-'))
  const timeFile = join(dir, 'time')
  try {
    const result = await new Promise<Omit<Sample, 'maxRssKb'>>((resolve, reject) => {
      const start = process.hrtime.bigint()
      // Its own process group, so a run that hangs can be killed whole, and only it.
      const child = spawn(GNU_TIME, ['-f', 'BENCH %e %M %x', '-o', timeFile, command, ...args], {
        cwd: opts.cwd ?? REPO_ROOT,
        env: opts.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true
      })
      const pid = child.pid as number
      active.add(pid)
      const out: Buffer[] = []
      const err: Buffer[] = []
      child.stdout.on('data', (c: Buffer) => out.push(c))
      child.stderr.on('data', (c: Buffer) => err.push(c))
      let end = 0n
      child.on('exit', () => (end = process.hrtime.bigint()))
      const timer = setTimeout(() => {
        try {
          process.kill(-pid, 'SIGKILL')
        } catch {
          // gone
        }
      }, RUN_TIMEOUT_MS)
      child.on('error', error => {
        clearTimeout(timer)
        active.delete(pid)
        reject(error)
      })
      child.on('close', (code, signal) => {
        clearTimeout(timer)
        active.delete(pid)
        if (signal) return reject(new Error(`${command} killed by ${signal} (timeout ${RUN_TIMEOUT_MS} ms?)`))
        resolve({
          ms: Number((end || process.hrtime.bigint()) - start) / 1e6,
          code: code ?? 1,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8')
        })
      })
    })
    const line = (await readFile(timeFile, 'utf8')).trim().split('\n').pop() ?? ''
    const m = /^BENCH (\S+) (\d+) (\d+)$/.exec(line)
    if (!m) throw new Error(`unexpected GNU time output: ${line}`)
    return { ...result, maxRssKb: Number(m[2]) }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------- the action, as the runner runs it

const envCache = new Map<string, NodeJS.ProcessEnv>()
const RUNNER_FILES = ['GITHUB_OUTPUT', 'GITHUB_STEP_SUMMARY', 'GITHUB_STATE']

/**
 * The environment testbed/runner.ts runBundle gives the action (action.yml defaults filled in,
 * INPUT_*, no inherited GITHUB_*), read by letting runBundle run bench/env-probe.cjs instead of
 * the bundle. The bundle is then spawned with it directly, so that the timing covers exactly one
 * node process, from spawn to exit, with no runner-side work inside it.
 */
export async function actionEnv(inputs: Record<string, string>, host: string): Promise<NodeJS.ProcessEnv> {
  const key = JSON.stringify([inputs, host])
  const cached = envCache.get(key)
  if (cached) return cached
  const probe = await runBundle(inputs, { host, script: join(BENCH_DIR, 'env-probe.cjs') })
  if (probe.code !== 0) throw new Error(`env probe failed: ${probe.stderr}`)
  const env = JSON.parse(probe.stdout) as NodeJS.ProcessEnv
  for (const name of RUNNER_FILES) delete env[name]
  envCache.set(key, env)
  return env
}

export interface ActionSample extends Sample {
  outputs: Record<string, string>
}

/** Reads `name<<DELIM ... DELIM` and `name=value` entries of a GITHUB_OUTPUT file. */
function outputsOf(text: string): Record<string, string> {
  const result: Record<string, string> = {}
  const re = /^([^=\n<]+)<<(.+)\n([\s\S]*?)\n\2$|^([^=\n<]+)=(.*)$/gm
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[1] !== undefined) result[m[1]] = m[3]
    else result[m[4]] = m[5]
  }
  return result
}

/** Empty GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and GITHUB_STATE files in a temp dir, for one run of the action. */
async function withRunnerFiles<T>(work: (files: Record<string, string>) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'dirb-bench-run-'))
  try {
    const files = Object.fromEntries(RUNNER_FILES.map(name => [name, join(dir, name.toLowerCase())]))
    for (const file of Object.values(files)) await writeFile(file, '')
    return await work(files)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** One real run of dist/index.js: summary on, GITHUB_STEP_SUMMARY and GITHUB_OUTPUT in a temp dir. */
export async function runAction(
  inputs: Record<string, string>,
  host: string,
  opts: { extraEnv?: Record<string, string> } = {}
): Promise<ActionSample> {
  const env = { ...(await actionEnv(inputs, host)), ...(opts.extraEnv ?? {}) }
  return withRunnerFiles(async files => {
    const sample = await timed(process.execPath, [BUNDLE], { env: { ...env, ...files } })
    return { ...sample, outputs: outputsOf(await readFile(files.GITHUB_OUTPUT, 'utf8')) }
  })
}

/** The docker CLI the way a workflow `run:` step runs it: through a shell (`sh -c '...'`). */
export function runCli(bed: Bed, shellCommand: string): Promise<Sample> {
  return timed('/bin/sh', ['-c', shellCommand], { env: bed.cliEnv() })
}

export function exists(path: string): boolean {
  return existsSync(path)
}
