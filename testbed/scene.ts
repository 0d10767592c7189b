import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, open, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { api, apiJson, upgradesToGrpc } from './api'
import { buildxPlugin, type EngineInfo } from './engine'
import { bedEnv } from './process'

export const BUSYBOX = 'testbed/busybox:static'
/** The label of the job records of `scope: job` (src/engine/records.ts). */
export const JOB_RECORD_LABEL = 'io.github.docker-image-reclaim.job'
const DOCKER = '/usr/bin/docker'
const CLI_TIMEOUT_MS = 120_000
const SETTLE_STEP_MS = 200
// How often a disk measurement is taken again when files vanished under it before giving up.
const DU_ATTEMPTS = 25
const SETTLE_WINDOW_MS = 4_000
// BuildKit writes a build's trace 3 s after the build ends, unless a client asks for it sooner.
const TRACE_WAIT_MS = 15_000
const LIST_ATTEMPTS = 5

export interface SceneTarget {
  host: string
  dataRoot: string
  /** Build contexts and the private DOCKER_CONFIG go here; defaults to a sibling of dataRoot (the engine's root). */
  workDir?: string
  /** The engine's flavour and image store; absent means a docker20-like overlay2 engine. */
  info?: EngineInfo
}

/**
 * `legacy`: the classic builder (DOCKER_BUILDKIT=0), on every engine; each step is an image of its
 * own, so a LABEL after the COPY gives a child with a parent. `buildkit`: `docker buildx build
 * --load` with buildx's `docker` driver, the engine's own BuildKit (Docker only, FROM scratch or
 * an image already on the engine); no step images, but a build cache the engine keeps beside the image.
 */
export type Builder = 'legacy' | 'buildkit'

export interface BuildOptions {
  /** The base: scratch unless given, else an image already on the engine (the bed never pulls). */
  from?: string
  /** Random bytes of the one COPY step; 100,000 unless given. */
  bytes?: number
  /** Several COPY steps instead of one, of these numbers of random bytes in order: one layer each. */
  layers?: number[]
  labels?: Record<string, string>
  /** `legacy` unless given. */
  builder?: Builder
}

/** A record of GET /system/df `BuildCache` (the fields the bed reads). */
export interface BuildCacheRecord {
  ID: string
  Type: string
  Description: string
  InUse: boolean
  Shared: boolean
  Size: number
}

/**
 * An image as a docker user sees it, whatever the engine: tags and digests in Docker's familiar
 * form (Podman's docker.io/library/app:1 is app:1), parent as sha256:<hex> or ''. The engine's own
 * spelling is in GET /images/json, which testbed/ENGINES.md describes per flavour.
 */
export interface ImageInfo {
  id: string
  tags: string[]
  digests: string[]
  parent: string
  created: number
}

export interface ContainerInfo {
  id: string
  image: string
  state: string
}

/** A platform as an image index names it (OCI image index `platform`). */
export interface Platform {
  os: string
  architecture: string
  variant?: string
}

/** What multiPlatform() wrote: the digests the engine may keep, per platform. */
export interface MultiPlatformImage {
  /** The engine's image ID for the tag (the index digest on the containerd store). */
  id: string
  /** sha256:<hex> of the image index. */
  index: string
  manifests: { platform: Platform; manifest: string; config: string; layer: string; layerBytes: number }[]
}

interface ApiImage {
  Id: string
  RepoTags: string[] | null
  RepoDigests: string[] | null
  ParentId: string
  Created: number
}

interface ApiContainer {
  Id: string
  ImageID: string
  State: string
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')
const blobName = (): string => `blob-${randomBytes(6).toString('hex')}`
const asList = (tags: string[] | string): string[] => (Array.isArray(tags) ? tags : [tags])
const real = (refs: string[] | null): string[] => (refs ?? []).filter(r => !r.startsWith('<none>')).map(familiar)

/** Docker's familiar form of a reference: docker.io/library/x:1 -> x:1, docker.io/org/x:1 -> org/x:1. */
export function familiar(ref: string): string {
  if (ref.startsWith('docker.io/library/')) return ref.slice('docker.io/library/'.length)
  if (ref.startsWith('docker.io/')) return ref.slice('docker.io/'.length)
  return ref
}

/** Podman 4.3 answers ParentId and some IDs as bare hex; every other engine as sha256:<hex>. */
export function asImageId(id: string): string {
  return /^[0-9a-f]{64}$/.test(id) ? `sha256:${id}` : id
}

/** name:tag or name@digest -> name; the registry host's port colon is not a tag separator. */
function repoOf(ref: string): string {
  const at = ref.indexOf('@')
  if (at >= 0) return ref.slice(0, at)
  const colon = ref.lastIndexOf(':')
  return colon > ref.lastIndexOf('/') ? ref.slice(0, colon) : ref
}

function withTag(ref: string): string {
  return repoOf(ref) === ref ? `${ref}:latest` : ref
}

/**
 * The fully qualified name Docker normalises a familiar one to (x:1 -> docker.io/library/x:1).
 * Archives name their images this way: Docker shows them familiar again, while Podman would
 * otherwise file a short name under localhost/ when it loads an archive (but under docker.io/
 * when it builds or tags through the compat API).
 */
function qualified(ref: string): string {
  const slash = ref.indexOf('/')
  const first = slash < 0 ? '' : ref.slice(0, slash)
  if (first.includes('.') || first.includes(':') || first === 'localhost') return ref
  return slash < 0 ? `docker.io/library/${ref}` : `docker.io/${ref}`
}

function labelLine(labels: Record<string, string> | undefined): string[] {
  const pairs = Object.entries(labels ?? {}).map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`)
  return pairs.length > 0 ? [`LABEL ${pairs.join(' ')}`] : []
}

function dockerArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' }
  return map[process.arch] ?? process.arch
}

/** The platform this machine runs, so the one an engine unpacks from an index at least. */
export function hostPlatform(): Platform {
  const architecture = dockerArch()
  return architecture === 'arm64' ? { os: 'linux', architecture, variant: 'v8' } : { os: 'linux', architecture }
}

/** A platform this machine does not run: an index's other platform, which nothing here ever starts. */
export function foreignPlatform(): Platform {
  return dockerArch() === 'amd64'
    ? { os: 'linux', architecture: 'arm64', variant: 'v8' }
    : { os: 'linux', architecture: 'amd64' }
}

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
/** The file, in the Scene's work directory, of the BuildKit traces still to come; see tracesWritten(). */
const PENDING_TRACES = 'pending-traces.json'
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar'

export class Scene {
  readonly host: string
  readonly socket: string
  readonly dataRoot: string
  readonly info: EngineInfo | undefined
  private readonly workDir: string
  private readonly env: NodeJS.ProcessEnv
  /** When the last build ended; see settled(). */
  private lastBuild = 0
  private settling: Promise<number> | undefined

  constructor(target: SceneTarget) {
    if (!target.host.startsWith('unix://')) throw new Error(`Scene needs a unix:// engine host, got ${target.host}`)
    this.host = target.host
    this.socket = target.host.slice('unix://'.length)
    this.dataRoot = target.dataRoot
    this.info = target.info
    this.workDir = target.workDir ?? join(dirname(target.dataRoot), 'scene')
    this.env = this.cliEnv()
  }

  private cliEnv(): NodeJS.ProcessEnv {
    // Inherited DOCKER_* (context, TLS, cert path) could point the CLI at another engine.
    const inherited = Object.entries(bedEnv()).filter(([k]) => !k.startsWith('DOCKER_'))
    return {
      ...Object.fromEntries(inherited),
      DOCKER_HOST: this.host,
      DOCKER_BUILDKIT: '0',
      DOCKER_CONFIG: join(this.workDir, 'docker-config')
    }
  }

  private async docker(args: string[]): Promise<string> {
    await mkdir(join(this.workDir, 'docker-config'), { recursive: true })
    return new Promise((resolve, reject) => {
      execFile(DOCKER, args, { env: this.env, maxBuffer: 64 << 20, timeout: CLI_TIMEOUT_MS }, (err, stdout, stderr) => {
        if (err) reject(new Error(`docker ${args.join(' ')} failed: ${err.message}\n${stderr}`))
        else resolve(stdout.trim())
      })
    })
  }

  private async tempDir(prefix: string): Promise<string> {
    await mkdir(this.workDir, { recursive: true })
    return mkdtemp(join(this.workDir, prefix))
  }

  async exists(ref: string): Promise<boolean> {
    const res = await api(this.socket, 'GET', `/images/${ref}/json`)
    if (res.status === 200) return true
    if (res.status === 404) return false
    throw new Error(`inspect ${ref} answered ${res.status}: ${res.body.trim()}`)
  }

  async imageId(ref: string): Promise<string> {
    return asImageId((await apiJson<{ Id: string }>(this.socket, 'GET', `/images/${ref}/json`)).Id)
  }

  async build(tags: string[] | string, opts: BuildOptions = {}): Promise<string> {
    const from = opts.from ?? 'scratch'
    if (from === BUSYBOX) await this.busybox()
    const files = Object.fromEntries(
      (opts.layers ?? [opts.bytes ?? 100_000]).map(size => [blobName(), randomBytes(size)])
    )
    const steps = [...Object.keys(files).map(blob => `COPY ${blob} /${blob}`), ...labelLine(opts.labels)]
    return this.buildContext(asList(tags), from, steps, files, opts.builder)
  }

  private async buildContext(
    tags: string[],
    from: string,
    steps: string[],
    files: Record<string, Buffer>,
    builder: Builder = 'legacy'
  ): Promise<string> {
    await (builder === 'buildkit' ? this.requireBuildKit(from) : this.requireLocalBase(from))
    const ctx = await this.tempDir('ctx-')
    try {
      await writeFile(join(ctx, 'Dockerfile'), [`FROM ${from}`, ...steps, ''].join('\n'))
      // COPY keeps the mode, and busybox must be executable; the random blobs do not care.
      for (const [name, data] of Object.entries(files)) await writeFile(join(ctx, name), data, { mode: 0o755 })
      const tagArgs = tags.length > 0 ? ['-t', tags[0]] : []
      const command = builder === 'buildkit' ? ['buildx', 'build', '--load'] : ['build']
      const known = builder === 'buildkit' ? await this.knownBlobs() : undefined
      const out = await this.docker([...command, '-q', '--network=none', ...tagArgs, ctx])
      // Only the legacy builder leaves snapshots for containerd's collector; BuildKit's stay as its cache.
      if (builder === 'legacy') this.lastBuild = Date.now()
      if (known) await this.setPendingTraces({ count: ((await this.pendingTraces())?.count ?? 0) + 1, known })
      // Podman prints the bare hex; the engine's inspect answers the ID in its own canonical form.
      const printed = out.match(/(?:sha256:)?[0-9a-f]{64}/g)?.pop()
      if (printed === undefined) throw new Error(`docker build printed no image ID: ${out}`)
      const id = await this.imageId(asImageId(printed))
      for (const tag of tags.slice(1)) await this.tag(id, tag)
      return id
    } finally {
      await rm(ctx, { recursive: true, force: true })
    }
  }

  /** A missing base would make the builder pull from Docker Hub, and nothing may leave loopback. */
  private async requireLocalBase(from: string): Promise<void> {
    if (from !== 'scratch' && !(await this.exists(from))) {
      throw new Error(`base image ${from} is not on this engine; the bed never pulls`)
    }
  }

  /**
   * buildx picks its `docker` driver only where the engine upgrades POST /grpc; elsewhere (Podman)
   * it takes the docker-container driver, which has the engine pull moby/buildkit. And BuildKit
   * resolves a FROM image through the engine's images first and a registry only when none is there
   * (or none of its platform). So a BuildKit build needs that upgrade, and a base on the engine. The
   * plugin is linked into the Scene's private DOCKER_CONFIG, where buildx also keeps its state.
   */
  private async requireBuildKit(from: string): Promise<void> {
    await this.requireLocalBase(from)
    if (from !== 'scratch') {
      const base = await apiJson<{ Architecture: string }>(this.socket, 'GET', `/images/${from}/json`)
      if (base.Architecture !== dockerArch())
        throw new Error(
          `base image ${from} is for ${base.Architecture}: BuildKit would look for this machine's in a registry`
        )
    }
    if (!(await upgradesToGrpc(this.socket)))
      throw new Error(
        `the engine at ${this.host} has no BuildKit (POST /grpc is not upgraded to h2c): build with the legacy builder`
      )
    const link = join(this.workDir, 'docker-config', 'cli-plugins', 'docker-buildx')
    await mkdir(dirname(link), { recursive: true })
    await symlink(buildxPlugin(), link).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err
    })
  }

  async tag(src: string, dst: string): Promise<void> {
    await this.docker(['tag', src, dst])
  }

  /** Returns the repo digest (name@sha256:…) the engine recorded for the push. */
  async push(ref: string): Promise<string> {
    await this.docker(['push', ref])
    const digests = (await apiJson<{ RepoDigests: string[] | null }>(this.socket, 'GET', `/images/${ref}/json`))
      .RepoDigests
    const repo = repoOf(ref)
    const digest = real(digests).find(d => d.startsWith(`${repo}@`))
    if (digest === undefined)
      throw new Error(`no RepoDigest for ${repo} after pushing ${ref}: ${JSON.stringify(digests)}`)
    return digest
  }

  async rmi(ref: string): Promise<void> {
    await this.docker(['rmi', ref])
  }

  async busybox(): Promise<string> {
    if (await this.exists(BUSYBOX)) return this.imageId(BUSYBOX)
    const steps = ['COPY busybox /bin/busybox', 'CMD ["/bin/busybox","sleep","3600"]']
    return this.buildContext([BUSYBOX], 'scratch', steps, { busybox: await readFile('/usr/bin/busybox') })
  }

  /** Running: sleeps for an hour. Stopped: ran to completion and exited. */
  async runContainer(image: string, opts: { running: boolean }): Promise<string> {
    // sleep as PID 1 ignores SIGTERM; without a short stop timeout every engine shutdown waits 10 s for it.
    const sleeper = ['--stop-timeout=1', image, '/bin/busybox', 'sleep', '3600']
    if (opts.running) return this.docker(['run', '-d', '--network=none', ...sleeper])
    const id = await this.docker(['create', '--network=none', image, '/bin/busybox', 'true'])
    await this.docker(['start', '--attach', id])
    // Docker 26 ends the attach stream before it records the exit: wait until the state says exited.
    await this.docker(['wait', id])
    return id
  }

  /** A container made and never started: an image with no program in it can still be "used". */
  async createContainer(image: string): Promise<string> {
    return this.docker(['create', '--network=none', image, '/never-run'])
  }

  async removeContainer(id: string): Promise<void> {
    await this.remove(`/containers/${id.trim()}?force=1&v=1`)
  }

  /** Loads a hand-written docker-save archive, since a build can only stamp the current time as Created. */
  async old(tag: string, createdIso: string, bytes = 100_000): Promise<string> {
    const [id] = await this.load([{ tag, createdIso, bytes }])
    return id
  }

  /** `count` distinct one-layer images tagged <repo>:0 ... <repo>:<count-1>, loaded in one go. */
  async many(repo: string, count: number, bytes = 1000): Promise<string[]> {
    const createdIso = new Date().toISOString()
    return this.load(Array.from({ length: count }, (_, n) => ({ tag: `${repo}:${n}`, createdIso, bytes })))
  }

  /**
   * Loads an image index of several platforms, as `buildx build --platform a,b --load` or a pull of
   * every platform leaves it, without a registry: an OCI image layout archive written here (one
   * manifest per platform, each with its own config and one uncompressed layer of `bytes` random
   * bytes), given to `docker load`. The index.json entry names the image for both containerd's
   * importer and the OCI convention, so the engine tags it. Which platforms the engine keeps, and
   * whether it takes such an archive at all, is its own business (testbed/ENGINES.md).
   */
  async multiPlatform(tag: string, opts: { bytes?: number; platforms?: Platform[] } = {}): Promise<MultiPlatformImage> {
    const platforms = opts.platforms ?? [hostPlatform(), foreignPlatform()]
    const layerBytes = opts.bytes ?? 100_000
    const dir = await this.tempDir('oci-')
    try {
      const layout = join(dir, 'layout')
      await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true })
      const created = new Date().toISOString()
      const manifests: MultiPlatformImage['manifests'] = []
      const entries = []
      for (const [n, platform] of platforms.entries()) {
        const layerTar = await this.writeLayer(dir, layerBytes, `platform${n}/layer.tar`)
        const layer = await putBlob(layout, layerTar, OCI_LAYER_TAR)
        const config = await putBlob(
          layout,
          Buffer.from(JSON.stringify(platformConfig(platform, created, layer.digest))),
          OCI_CONFIG
        )
        const manifest = await putBlob(
          layout,
          Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] })),
          OCI_MANIFEST
        )
        entries.push({ ...manifest, platform })
        manifests.push({ platform, manifest: manifest.digest, config: config.digest, layer: layer.digest, layerBytes })
      }
      const index = await putBlob(
        layout,
        Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries })),
        OCI_INDEX
      )
      const name = qualified(withTag(tag))
      const annotations = {
        'io.containerd.image.name': name,
        'org.opencontainers.image.ref.name': name.slice(name.lastIndexOf(':') + 1)
      }
      await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
      await writeFile(
        join(layout, 'index.json'),
        JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...index, annotations }] })
      )
      const archive = join(dir, 'image.tar')
      await tar(['-cf', archive, '-C', layout, '.'])
      await this.docker(['load', '-q', '-i', archive])
      return { id: await this.imageId(name), index: index.digest, manifests }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  private async load(images: { tag: string; createdIso: string; bytes: number }[]): Promise<string[]> {
    const dir = await this.tempDir('load-')
    try {
      const manifest = []
      for (const [n, image] of images.entries()) {
        const layerPath = `layer${n}/layer.tar`
        const layer = await this.writeLayer(dir, image.bytes, layerPath)
        const config = Buffer.from(JSON.stringify(oldConfig(image.createdIso, `sha256:${sha256(layer)}`)))
        const id = sha256(config)
        await writeFile(join(dir, 'img', `${id}.json`), config)
        manifest.push({ Config: `${id}.json`, RepoTags: [qualified(withTag(image.tag))], Layers: [layerPath] })
      }
      await writeFile(join(dir, 'img', 'manifest.json'), JSON.stringify(manifest))
      const archive = join(dir, 'image.tar')
      await tar(['-cf', archive, '-C', join(dir, 'img'), '.'])
      await this.docker(['load', '-q', '-i', archive])
      // The config digest is the ID on overlay2 and Podman; the containerd store names images by manifest digest.
      const ids: string[] = []
      for (const entry of manifest) ids.push(await this.imageId(entry.RepoTags[0]))
      return ids
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  private async writeLayer(dir: string, bytes: number, layerPath: string): Promise<Buffer> {
    const blob = blobName()
    const fs = join(dir, 'fs', layerPath)
    await mkdir(fs, { recursive: true })
    await mkdir(join(dir, 'img', dirname(layerPath)), { recursive: true })
    await writeFile(join(fs, blob), randomBytes(bytes))
    const layerTar = join(dir, 'img', layerPath)
    await tar(['-cf', layerTar, '-C', fs, blob])
    return readFile(layerTar)
  }

  /** Builds name:tmp twice so the first build loses its tag; returns that dangling image's ID. */
  async dangling(name: string): Promise<string> {
    const first = await this.build(`${name}:tmp`)
    await this.build(`${name}:tmp`)
    return first
  }

  async images(): Promise<ImageInfo[]> {
    const list = await this.listImages()
    return list.map(i => ({
      id: asImageId(i.Id),
      tags: real(i.RepoTags),
      digests: real(i.RepoDigests),
      parent: asImageId(i.ParentId ?? ''),
      created: i.Created
    }))
  }

  /**
   * The containerd store answers the list with 404 `content digest … not found`, and Podman with
   * 500 `retrieving label for image …: image not known`, when an image it is reading is deleted
   * meanwhile: asked again, they list what is left.
   */
  private listImages(): Promise<ApiImage[]> {
    return this.readAgainOn<ApiImage[]>('/images/json?all=1', [404, 500])
  }

  /**
   * Docker 28's containerd store answers 404 `NotFound: snapshot <id>-view does not exist` when a
   * view BuildKit made for a build that just ended goes while the engine sizes it: asked again, it
   * answers.
   */
  private systemDf<T>(): Promise<T> {
    return this.readAgainOn<T>('/system/df', [404])
  }

  /** GET path, asked again up to LIST_ATTEMPTS times while the engine answers one of `raced`. */
  private async readAgainOn<T>(path: string, raced: number[]): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const res = await api(this.socket, 'GET', path)
      if (res.status === 200) return JSON.parse(res.body) as T
      if (!raced.includes(res.status) || attempt === LIST_ATTEMPTS)
        throw new Error(`GET ${path} answered ${res.status}: ${res.body.trim()}`)
    }
  }

  async containers(): Promise<ContainerInfo[]> {
    const list = await apiJson<ApiContainer[]>(this.socket, 'GET', '/containers/json?all=1')
    return list.map(c => ({ id: c.Id, image: asImageId(c.ImageID), state: c.State }))
  }

  async layersSize(): Promise<number> {
    return this.settled()
  }

  /** The job records `scope: job` leaves on the engine (volumes with its label): name to labels. */
  async jobRecords(): Promise<Map<string, Record<string, string>>> {
    const filters = encodeURIComponent(JSON.stringify({ label: [JOB_RECORD_LABEL] }))
    const answer = await apiJson<{ Volumes: { Name: string; Labels: Record<string, string> | null }[] | null }>(
      this.socket,
      'GET',
      `/volumes?filters=${filters}`
    )
    return new Map((answer.Volumes ?? []).map(v => [v.Name, v.Labels ?? {}]))
  }

  private async rawLayersSize(): Promise<number> {
    return (await this.systemDf<{ LayersSize: number }>()).LayersSize
  }

  /**
   * LayersSize once storage is at rest. On the containerd image store the legacy builder's
   * snapshots outlive `docker build` by about a second, until containerd's garbage collector takes
   * them (right after a 1 MB COPY, LayersSize and the disk show 1 MB too much): measuring then
   * would count them as images' bytes. So for a few seconds after a build, wait for that fall.
   * Other stores, and loads, are at rest when the request returns.
   */
  private settled(): Promise<number> {
    // Docker answers a second /system/df while one runs with 500 "a disk usage operation is
    // already running": layersSize() and diskBytes() in parallel share one.
    this.settling ??= this.settle().finally(() => {
      this.settling = undefined
    })
    return this.settling
  }

  private async settle(): Promise<number> {
    let last = await this.rawLayersSize()
    if (this.info?.imageStore !== 'containerd') return last
    while (Date.now() < this.lastBuild + SETTLE_WINDOW_MS) {
      await new Promise(resolve => setTimeout(resolve, SETTLE_STEP_MS))
      const now = await this.rawLayersSize()
      if (now < last) {
        // One collection takes every snapshot no image holds, however many builds left them.
        this.lastBuild = 0
        return now
      }
      last = now
    }
    return last
  }

  /** Where BuildKit's build history lands: the containerd store's content, or on overlay2 BuildKit's own. */
  private get contentBlobs(): string {
    return this.info?.imageStore === 'containerd'
      ? join(this.dataRoot, 'containerd', 'daemon', 'io.containerd.content.v1.content', 'blobs', 'sha256')
      : join(this.dataRoot, 'buildkit', 'content', 'blobs', 'sha256')
  }

  /** The content blobs before a BuildKit build, where its trace arrives late. */
  private async knownBlobs(): Promise<Set<string> | undefined> {
    if (this.info?.imageStore === 'podman') return undefined
    const pending = await this.pendingTraces()
    if (pending) return pending.known
    return new Set(await readdir(this.contentBlobs).catch(() => []))
  }

  /**
   * BuildKit keeps each build's trace, about 100 kB of JSON spans, as content of its build history,
   * and writes it some seconds after `docker buildx build` returned: a measurement taken before it
   * would count it as freed or kept by whatever the test did next. So a disk measurement waits for
   * the trace of every BuildKit build since the last one, up to TRACE_WAIT_MS.
   */
  private async tracesWritten(): Promise<void> {
    const pending = await this.pendingTraces()
    if (!pending) return
    const deadline = Date.now() + TRACE_WAIT_MS
    while ((await this.tracesSince(pending.known)) < pending.count && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, SETTLE_STEP_MS))
    }
    await this.setPendingTraces(undefined)
  }

  /**
   * BuildKit builds whose trace was not seen yet, and the content blobs before the first. Kept in
   * a file beside the data root, not in memory: a test file's last build may leave its trace to
   * land while the next file, with a Scene of its own on the same engine, measures the disk.
   */
  private async pendingTraces(): Promise<{ count: number; known: Set<string> } | undefined> {
    const text = await readFile(join(this.workDir, PENDING_TRACES), 'utf8').catch(() => undefined)
    if (text === undefined) return undefined
    const saved = JSON.parse(text) as { count: number; known: string[] }
    return { count: saved.count, known: new Set(saved.known) }
  }

  private async setPendingTraces(pending: { count: number; known: Set<string> } | undefined): Promise<void> {
    const file = join(this.workDir, PENDING_TRACES)
    if (!pending) return rm(file, { force: true })
    await mkdir(this.workDir, { recursive: true })
    await writeFile(file, JSON.stringify({ count: pending.count, known: [...pending.known] }))
  }

  private async tracesSince(known: Set<string>): Promise<number> {
    let traces = 0
    for (const name of await readdir(this.contentBlobs).catch(() => [])) {
      if (!known.has(name) && isTrace(await head(join(this.contentBlobs, name)))) traces++
    }
    return traces
  }

  /** GET /system/df `BuildCache`: what BuildKit keeps (Podman answers an empty list). */
  async buildCache(): Promise<BuildCacheRecord[]> {
    // Docker refuses a second /system/df while one runs (see settled()).
    await this.settling?.catch(() => undefined)
    return (await this.systemDf<{ BuildCache: BuildCacheRecord[] | null }>()).BuildCache ?? []
  }

  async diskBytes(): Promise<number> {
    if (this.info?.imageStore === 'containerd') await this.settled()
    await this.tracesWritten()
    // The engine may still be deleting (containerd's collector runs on its own time): a walk that met files
    // vanishing counted a disk in motion, so it is measured again once the walk comes back clean.
    for (let attempt = 1; ; attempt++) {
      const { out, err } = await new Promise<{ out: string; err: string }>(resolve => {
        execFile('du', ['-sbx', this.dataRoot], (error, stdout, stderr) =>
          resolve({ out: stdout, err: error ? stderr || String(error) : '' })
        )
      })
      if (!err) return Number(out.split(/\s/)[0])
      const vanished = err
        .trim()
        .split('\n')
        .every(line => /No such file or directory/.test(line))
      if (!vanished || attempt >= DU_ATTEMPTS) throw new Error(`du: ${err}`)
      await new Promise(resolve => setTimeout(resolve, SETTLE_STEP_MS))
    }
  }

  /**
   * Removes every container and image of this engine, leaf images first because parents cannot be forced out.
   * With keepBusybox the engine ends holding exactly the busybox image (built if missing), so every test starts alike.
   */
  async wipe(opts: { keepBusybox?: boolean } = {}): Promise<void> {
    for (const c of await this.containers()) await this.removeContainer(c.id)
    const keep = opts.keepBusybox ? await this.lineage(await this.busybox()) : new Set<string>()
    // Each round removes at least one image, so more rounds than images means removal is stuck.
    for (let round = (await this.images()).length; round >= 0; round--) {
      const leaves = await this.leaves(keep)
      if (leaves.length === 0) break
      for (const id of leaves) await this.remove(`/images/${id}?force=1`)
    }
    const left = (await this.images()).filter(i => !keep.has(i.id))
    if (left.length > 0) throw new Error(`wipe left images behind: ${JSON.stringify(left)}`)
    // A job record left by one test would make every later post step leave its images to that job.
    for (const name of (await this.jobRecords()).keys()) await this.remove(`/volumes/${name}`)
    await this.untagKeptExtras(keep)
    await this.pruneBuildCache()
  }

  /**
   * On the containerd store a BuildKit build FROM an image of the engine leaves a temporary lease
   * (`buildkit/lease.temporary`, `containerd.io/gc.expire` 5 minutes on) on that image's snapshot:
   * the snapshot outlives the image and every image built on it until the lease expires or the next
   * POST /build/prune, even one that removes nothing, which is sent here.
   */
  async dropBuildLeases(): Promise<void> {
    const nothing = encodeURIComponent(JSON.stringify({ id: ['^$'] }))
    const res = await api(this.socket, 'POST', `/build/prune?all=1&filters=${nothing}`)
    if (res.status !== 200) throw new Error(`POST /build/prune answered ${res.status}: ${res.body.trim()}`)
    const pruned = (JSON.parse(res.body) as { CachesDeleted: string[] | null }).CachesDeleted ?? []
    if (pruned.length > 0) throw new Error(`a prune of no record removed ${pruned.join(', ')}`)
  }

  /**
   * A BuildKit build's cache outlives its image, and on the containerd store LayersSize counts its
   * snapshots. Podman has no such endpoint (404) and no such cache.
   */
  async pruneBuildCache(): Promise<void> {
    const res = await api(this.socket, 'POST', '/build/prune?all=1')
    if (res.status !== 200 && res.status !== 404)
      throw new Error(`POST /build/prune answered ${res.status}: ${res.body.trim()}`)
  }

  /**
   * Tags or pushes a test gave the busybox image would otherwise outlive the test. Tags go first:
   * the containerd store and Podman list a name@digest for every tagged name, and deleting such a
   * digest reference there deletes the whole image. What digests remain after that belong to no
   * tag of the image (Docker's overlay2 store after a push) and are untagged one by one.
   */
  private async untagKeptExtras(keep: Set<string>): Promise<void> {
    const tagged = (await this.images()).filter(i => keep.has(i.id))
    for (const ref of tagged.flatMap(i => i.tags).filter(ref => ref !== BUSYBOX)) await this.remove(`/images/${ref}`)
    const kept = (await this.images()).filter(i => keep.has(i.id))
    const digests = kept.flatMap(i => i.digests.filter(d => !i.tags.some(t => repoOf(t) === repoOf(d))))
    for (const ref of digests) await this.remove(`/images/${ref}`)
  }

  private async leaves(keep: Set<string>): Promise<string[]> {
    const images = await this.images()
    const parents = new Set(images.map(i => i.parent))
    return images.filter(i => !parents.has(i.id) && !keep.has(i.id)).map(i => i.id)
  }

  private async lineage(id: string): Promise<Set<string>> {
    const parentOf = new Map((await this.images()).map(i => [i.id, i.parent]))
    const ids = new Set<string>()
    for (let at = id; at !== ''; at = parentOf.get(at) ?? '') ids.add(at)
    return ids
  }

  /** A 404 means an earlier removal already pruned it. */
  private async remove(path: string): Promise<void> {
    const res = await api(this.socket, 'DELETE', path)
    if (res.status !== 200 && res.status !== 204 && res.status !== 404) {
      throw new Error(`DELETE ${path} answered ${res.status}: ${res.body.trim()}`)
    }
  }
}

/** The first bytes of a file, or nothing if it is gone (containerd's collector may take it meanwhile). */
async function head(path: string): Promise<string> {
  const file = await open(path).catch(() => undefined)
  if (!file) return ''
  try {
    const { bytesRead, buffer } = await file.read(Buffer.alloc(512), 0, 512, 0)
    return buffer.subarray(0, bytesRead).toString()
  } finally {
    await file.close()
  }
}

/** BuildKit's trace blob: OpenTelemetry spans as indented JSON, each with its name and span context. */
const isTrace = (text: string): boolean => /^\{\s*"Name":/.test(text) && text.includes('"SpanContext"')

function oldConfig(created: string, diffId: string): object {
  return {
    architecture: dockerArch(),
    os: 'linux',
    created,
    config: {},
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created, created_by: 'testbed Scene.old()' }]
  }
}

interface Descriptor {
  mediaType: string
  digest: string
  size: number
}

/** Writes a blob into an OCI image layout under its digest, and returns its descriptor. */
async function putBlob(layout: string, data: Buffer, mediaType: string): Promise<Descriptor> {
  const hex = sha256(data)
  await writeFile(join(layout, 'blobs', 'sha256', hex), data)
  return { mediaType, digest: `sha256:${hex}`, size: data.length }
}

function platformConfig(platform: Platform, created: string, diffId: string): object {
  return {
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    created,
    config: {},
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created, created_by: 'testbed Scene.multiPlatform()' }]
  }
}

function tar(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('tar', args, (err, _stdout, stderr) =>
      err ? reject(new Error(`tar ${args.join(' ')}: ${stderr}`)) : resolve()
    )
  })
}
