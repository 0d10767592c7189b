/**
 * The benchmark's scenes: N images in repository `bench`, of which BIG have a real 5 MB layer
 * (Scene.build) and the rest a distinct 1 kB layer each (Scene.many, one docker-save archive);
 * and the build-cache scene: CACHE_BUILDS BuildKit builds, whose cache records the engine keeps.
 *
 * Making them is the slow part (docker load applies every layer through a helper process of its
 * own), so it happens once: the images are saved as one archive (docker save, which any engine
 * can load), and the engine's data root holding each scene is kept as a snapshot. A timed run
 * then starts from a copy of that snapshot: much quicker than a load, and the same bytes on disk
 * every time.
 */
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, apiJson } from '../testbed/api'
import { Scene } from '../testbed/scene'
import { CACHE_DIR, log, run, snapshotFingerprint, timeIt, type Bed } from './lib'

export const REPO = 'bench'
export const BIG = 20
export const BIG_BYTES = 5_000_000
export const SMALL_BYTES = 1_000
/**
 * Images per Scene.many call: its docker load must finish within the test bed's CLI timeout
 * (CLI_TIMEOUT_MS), and a load slows down as the engine fills.
 */
const CHUNK = 150
/** Bump when the scene's recipe changes, so old caches are not taken for new ones. */
const LAYOUT = 1

/** The build-cache scene: BuildKit builds FROM scratch, CACHE_BIG of them with a 5 MB layer. */
export const CACHE_REPO = 'cache'
export const CACHE_BUILDS = 75
export const CACHE_BIG = 5
/** Bump when the build-cache scene's recipe changes. */
const CACHE_LAYOUT = 1

export interface CacheSpec {
  layout: number
  builds: number
  big: number
  smallBytes: number
  bigBytes: number
}

/** What the build-cache snapshot holds, as the engine listed it when it was made. */
export interface CacheScene {
  records: number
  images: number
  /** Sum of the records' sizes in /system/df. */
  bytes: number
  /** How long the builds took, when this run made the scene (ms). */
  buildMs?: number
  date: string
}

const cacheSpec = (): CacheSpec => ({
  layout: CACHE_LAYOUT,
  builds: CACHE_BUILDS,
  big: CACHE_BIG,
  smallBytes: SMALL_BYTES,
  bigBytes: BIG_BYTES
})

export interface SceneSpec {
  layout: number
  total: number
  small: number
  big: number
  smallBytes: number
  bigBytes: number
}

export interface SetupCosts {
  /** Scene.many(small) + BIG Scene.build, when the archive had to be made (ms). */
  generateMs?: number
  /** docker save of the whole scene (ms). */
  saveMs?: number
  /** docker load -i of the cached archive into an empty engine (ms), and how many images it held. */
  loadMs?: number
  loadImages?: number
  archive?: string
  archiveBytes?: number
  /** Where the numbers come from: this run, or the cache made earlier (with its date). */
  source: string
}

export function spec(total: number): SceneSpec {
  return { layout: LAYOUT, total, small: total - BIG, big: BIG, smallBytes: SMALL_BYTES, bigBytes: BIG_BYTES }
}

const sameSpec = (a: SceneSpec, b: SceneSpec): boolean => JSON.stringify(a) === JSON.stringify(b)

export class Scenes {
  private engineKey = ''
  constructor(private readonly bed: Bed) {}

  /** Snapshots are tied to the engine that wrote them (version and storage driver). */
  async init(): Promise<string> {
    const version = await apiJson<{ Version: string }>(this.bed.socket, 'GET', '/version')
    const info = await apiJson<{ Driver: string }>(this.bed.socket, 'GET', '/info')
    this.engineKey = `${version.Version}-${info.Driver}`.replace(/[^A-Za-z0-9._-]/g, '_')
    return this.engineKey
  }

  /** Everything cached for this engine: its snapshots and what making them cost. */
  get engineDir(): string {
    return join(CACHE_DIR, `engine-${this.engineKey}`)
  }

  /** What making the scene of `total` images cost; kept per engine, since the load time depends on the engine. */
  private setupFile(total: number): string {
    return join(this.engineDir, `setup-${total}.json`)
  }

  snapshotDir(total: number): string {
    return join(this.engineDir, `scene-${total}`)
  }

  cacheSnapshotDir(): string {
    return join(this.engineDir, `cache-${CACHE_BUILDS}`)
  }

  private async validCache(): Promise<CacheScene | undefined> {
    const dir = this.cacheSnapshotDir()
    const meta = await readJson<{ spec: CacheSpec; scene: CacheScene; fingerprint: string }>(join(dir, 'meta.json'))
    if (meta === undefined || JSON.stringify(meta.spec) !== JSON.stringify(cacheSpec())) return undefined
    if (!existsSync(join(dir, 'data')) || meta.fingerprint !== (await snapshotFingerprint(dir))) return undefined
    return meta.scene
  }

  /**
   * The build-cache scene, made once per engine: a build cache cannot be saved and loaded as
   * images can, so its builds run again on an empty engine of each version and store.
   */
  async ensureCache(): Promise<CacheScene> {
    const cached = await this.validCache()
    if (cached) {
      log(`build-cache scene: cached under ${this.cacheSnapshotDir()} (${cached.records} records)`)
      return cached
    }
    await this.bed.reset()
    const scene = new Scene({ host: this.bed.host, dataRoot: this.bed.dataRoot, workDir: join(this.bed.root, 'scene') })
    log(`build-cache scene: ${CACHE_BUILDS} BuildKit builds, ${CACHE_BIG} of them with a 5 MB layer`)
    const { ms: buildMs } = await timeIt(async () => {
      for (let i = 0; i < CACHE_BUILDS; i++) {
        const bytes = i < CACHE_BIG ? BIG_BYTES : SMALL_BYTES
        await scene.build(`${CACHE_REPO}:${i}`, { bytes, builder: 'buildkit' })
      }
    })
    const records = await buildCacheRecords(this.bed.socket)
    const made: CacheScene = {
      records: records.length,
      images: await this.bed.imageCount(CACHE_REPO),
      bytes: records.reduce((sum, r) => sum + r.Size, 0),
      buildMs,
      date: new Date().toISOString()
    }
    if (made.images !== CACHE_BUILDS) throw new Error(`build-cache scene: ${made.images} images, not ${CACHE_BUILDS}`)
    log(`build-cache scene: ${made.records} records in ${(buildMs / 1000).toFixed(1)} s -> ${this.cacheSnapshotDir()}`)
    await this.bed.snapshot(this.cacheSnapshotDir(), { spec: cacheSpec(), scene: made, engine: this.engineKey })
    return made
  }

  /** After the runs, as verify() does for the image scenes. */
  async verifyCache(): Promise<string[]> {
    if (!existsSync(this.cacheSnapshotDir()) || (await this.validCache())) return []
    await rm(this.cacheSnapshotDir(), { recursive: true, force: true })
    return ['build-cache scene: its snapshot changed during the runs; results may be off, and it will be made again']
  }

  private archivePath(total: number): string {
    return join(CACHE_DIR, `archive-${total}.tar`)
  }

  private async valid(total: number): Promise<boolean> {
    const dir = this.snapshotDir(total)
    const meta = await readJson<{ spec: SceneSpec; fingerprint?: string }>(join(dir, 'meta.json'))
    if (meta === undefined || !sameSpec(meta.spec, spec(total)) || !existsSync(join(dir, 'data'))) return false
    const fingerprint = await snapshotFingerprint(dir)
    if (meta.fingerprint === undefined) {
      await writeFile(join(dir, 'meta.json'), JSON.stringify({ ...meta, fingerprint }, null, 2))
      return true
    }
    if (meta.fingerprint !== fingerprint) {
      log(`scene ${total}: the snapshot changed since it was made; making it again`)
      return false
    }
    return true
  }

  /** After the runs: a snapshot whose files changed (written through a hard link) is reported and dropped. */
  async verify(sizes: number[]): Promise<string[]> {
    const bad: string[] = []
    for (const n of sizes) {
      if (await this.valid(n)) continue
      bad.push(`scene ${n}: its snapshot changed during the runs; results may be off, and it will be made again`)
      await rm(this.snapshotDir(n), { recursive: true, force: true })
    }
    return bad
  }

  /**
   * Makes sure a snapshot exists for every size: from a larger snapshot, else from the cached
   * archive, else from scratch; smaller scenes are cut from a larger one by deleting its highest
   * numbered small images. Leaves the engine in an unspecified state.
   */
  async ensure(sizes: number[]): Promise<SetupCosts> {
    const missing: number[] = []
    for (const n of sizes) if (!(await this.valid(n))) missing.push(n)
    const largest = Math.max(...sizes)
    const costs = (await readJson<SetupCosts>(this.setupFile(largest))) ?? { source: 'none' }
    if (missing.length === 0) {
      log(`scenes ${sizes.join(', ')}: cached under ${this.engineDir}`)
      return { ...costs, source: costs.source === 'none' ? 'cache (no setup record)' : `cache: ${costs.source}` }
    }
    missing.sort((a, b) => b - a)
    const top = missing[0]
    const donors: number[] = []
    for (const n of [...sizes, 300, 1000, 3000]) if (n > top && (await this.valid(n))) donors.push(n)
    let fresh: SetupCosts = { source: `this run, ${new Date().toISOString()}` }
    let current: number
    if (donors.length > 0) {
      current = Math.min(...donors)
      log(`scene ${top}: cutting it from the cached scene ${current}`)
      await this.bed.restore(this.snapshotDir(current))
    } else {
      fresh = { ...fresh, ...(await this.load(top)) }
      current = top
    }
    for (const n of missing) {
      if (n < current) await this.cut(current, n)
      await this.check(n)
      log(`scene ${n}: snapshot of the data root -> ${this.snapshotDir(n)}`)
      await this.bed.snapshot(this.snapshotDir(n), {
        spec: spec(n),
        engine: this.engineKey,
        date: new Date().toISOString()
      })
      current = n
    }
    if (fresh.loadMs !== undefined || fresh.generateMs !== undefined) {
      await writeFile(this.setupFile(top), JSON.stringify(fresh, null, 2))
      return fresh
    }
    return { ...costs, source: `cache: ${costs.source}` }
  }

  /** Loads the archive of `total` images into an empty engine, making the archive first if there is none. */
  private async load(total: number): Promise<Omit<SetupCosts, 'source'>> {
    await mkdir(CACHE_DIR, { recursive: true })
    await this.bed.reset()
    const archive = this.archivePath(total)
    const archiveMeta = join(CACHE_DIR, `archive-${total}.json`)
    const meta = await readJson<{ spec: SceneSpec; generateMs: number; saveMs: number }>(archiveMeta)
    if (meta && sameSpec(meta.spec, spec(total)) && existsSync(archive)) {
      log(`scene ${total}: docker load -i ${archive} (timed)`)
      const { ms } = await timeIt(() => run('/usr/bin/docker', ['load', '-q', '-i', archive], this.bed.cliEnv()))
      log(`scene ${total}: loaded ${total} images in ${(ms / 1000).toFixed(1)} s`)
      return {
        generateMs: meta.generateMs,
        saveMs: meta.saveMs,
        loadMs: ms,
        loadImages: total,
        archive,
        archiveBytes: await size(archive)
      }
    }
    const s = spec(total)
    log(
      `scene ${total}: no archive yet; Scene.many(${REPO}, ${s.small}) and ${s.big} x Scene.build(5 MB): several minutes at 3,000`
    )
    const scene = new Scene({ host: this.bed.host, dataRoot: this.bed.dataRoot, workDir: join(this.bed.root, 'scene') })
    const { ms: generateMs } = await timeIt(async () => {
      for (let from = 0; from < s.small; from += CHUNK) {
        const count = Math.min(CHUNK, s.small - from)
        log(`scene ${total}: Scene.many, images ${from}-${from + count - 1}`)
        await this.chunk(scene, from, count)
      }
      for (let i = 0; i < s.big; i++) await scene.build(`${REPO}:big-${i}`, { bytes: s.bigBytes })
    })
    log(`scene ${total}: made in ${(generateMs / 1000).toFixed(1)} s; docker save -o ${archive}`)
    await rm(archive, { force: true })
    const { ms: saveMs } = await timeIt(() => run('/usr/bin/docker', ['save', '-o', archive, REPO], this.bed.cliEnv()))
    await writeFile(
      archiveMeta,
      JSON.stringify({ spec: s, generateMs, saveMs, date: new Date().toISOString() }, null, 2)
    )
    return { generateMs, saveMs, archive, archiveBytes: await size(archive) }
  }

  /**
   * Scene.many's docker load runs under the test bed's CLI timeout, which a load of thousands of
   * images exceeds: they are made in chunks under a repository of their own, then tagged
   * bench:<n> and the chunk's tag removed, through the API.
   */
  private async chunk(scene: Scene, from: number, count: number): Promise<void> {
    const temp = `${REPO}-chunk${from}`
    const ids = await scene.many(temp, count, SMALL_BYTES)
    for (const [i, id] of ids.entries()) {
      const tagged = await api(this.bed.socket, 'POST', `/images/${id}/tag?repo=${REPO}&tag=${from + i}`)
      if (tagged.status !== 201) throw new Error(`tag ${id} ${REPO}:${from + i}: ${tagged.status} ${tagged.body}`)
      const untagged = await api(this.bed.socket, 'DELETE', `/images/${temp}:${i}`)
      if (untagged.status !== 200) throw new Error(`untag ${temp}:${i}: ${untagged.status} ${untagged.body}`)
    }
  }

  /** From a scene of `from` images to one of `to`: deletes bench:<to-BIG> ... bench:<from-BIG-1>. */
  private async cut(from: number, to: number): Promise<void> {
    const tags = Array.from({ length: from - to }, (_, i) => `${REPO}:${to - BIG + i}`)
    log(`scene ${to}: deleting ${tags.length} images of scene ${from}`)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < tags.length) {
        const tag = tags[next++]
        const res = await api(this.bed.socket, 'DELETE', `/images/${tag}`)
        if (res.status !== 200) throw new Error(`DELETE ${tag}: ${res.status} ${res.body}`)
      }
    }
    await Promise.all(Array.from({ length: 4 }, worker))
  }

  private async check(total: number): Promise<void> {
    const count = await this.bed.imageCount()
    const bench = await this.bed.imageCount(REPO)
    if (count !== total || bench !== total)
      throw new Error(`scene ${total}: the engine holds ${count} images, ${bench} of ${REPO}`)
  }
}

/**
 * The engine's build cache records (GET /system/df; the bench engines hold no container). Docker
 * 28's containerd store answers 404 while a view of a build that just ended goes: asked again.
 */
export async function buildCacheRecords(socket: string): Promise<{ ID: string; Size: number }[]> {
  for (let attempt = 1; ; attempt++) {
    const res = await api(socket, 'GET', '/system/df')
    if (res.status === 200)
      return (JSON.parse(res.body) as { BuildCache: { ID: string; Size: number }[] | null }).BuildCache ?? []
    if (res.status !== 404 || attempt === 5)
      throw new Error(`GET /system/df answered ${res.status}: ${res.body.trim()}`)
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T
  } catch {
    return undefined
  }
}

async function size(file: string): Promise<number> {
  return Number((await run('stat', ['-c', '%s', file])).trim())
}
