import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { api, apiJson } from './api'
import { bedEnv } from './process'

export const BUSYBOX = 'testbed/busybox:static'
const DOCKER = '/usr/bin/docker'
const CLI_TIMEOUT_MS = 120_000

export interface SceneTarget {
  host: string
  dataRoot: string
  /** Build contexts and the private DOCKER_CONFIG go here; defaults to a sibling of dataRoot (the engine's root). */
  workDir?: string
}

export interface BuildOptions {
  from?: string
  bytes?: number
  labels?: Record<string, string>
}

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
const real = (refs: string[] | null): string[] => (refs ?? []).filter(r => !r.startsWith('<none>'))

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

function labelLine(labels: Record<string, string> | undefined): string[] {
  const pairs = Object.entries(labels ?? {}).map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`)
  return pairs.length > 0 ? [`LABEL ${pairs.join(' ')}`] : []
}

function dockerArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' }
  return map[process.arch] ?? process.arch
}

export class Scene {
  readonly host: string
  readonly socket: string
  readonly dataRoot: string
  private readonly workDir: string
  private readonly env: NodeJS.ProcessEnv

  constructor(target: SceneTarget) {
    if (!target.host.startsWith('unix://')) throw new Error(`Scene needs a unix:// engine host, got ${target.host}`)
    this.host = target.host
    this.socket = target.host.slice('unix://'.length)
    this.dataRoot = target.dataRoot
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
    return (await apiJson<{ Id: string }>(this.socket, 'GET', `/images/${ref}/json`)).Id
  }

  async build(tags: string[] | string, opts: BuildOptions = {}): Promise<string> {
    const from = opts.from ?? 'scratch'
    if (from === BUSYBOX) await this.busybox()
    const blob = blobName()
    const steps = [`COPY ${blob} /${blob}`, ...labelLine(opts.labels)]
    return this.buildContext(asList(tags), from, steps, { [blob]: randomBytes(opts.bytes ?? 100_000) })
  }

  private async buildContext(tags: string[], from: string, steps: string[], files: Record<string, Buffer>): Promise<string> {
    await this.requireLocalBase(from)
    const ctx = await this.tempDir('ctx-')
    try {
      await writeFile(join(ctx, 'Dockerfile'), [`FROM ${from}`, ...steps, ''].join('\n'))
      // COPY keeps the mode, and busybox must be executable; the random blobs do not care.
      for (const [name, data] of Object.entries(files)) await writeFile(join(ctx, name), data, { mode: 0o755 })
      const tagArgs = tags.length > 0 ? ['-t', tags[0]] : []
      const out = await this.docker(['build', '-q', '--network=none', ...tagArgs, ctx])
      const id = out.match(/sha256:[0-9a-f]{64}/g)?.pop()
      if (id === undefined) throw new Error(`docker build printed no image ID: ${out}`)
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

  async tag(src: string, dst: string): Promise<void> {
    await this.docker(['tag', src, dst])
  }

  /** Returns the repo digest (name@sha256:…) the engine recorded for the push. */
  async push(ref: string): Promise<string> {
    await this.docker(['push', ref])
    const out = await this.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref])
    const repo = repoOf(ref)
    const digest = (JSON.parse(out) as string[]).find(d => d.startsWith(`${repo}@`))
    if (digest === undefined) throw new Error(`no RepoDigest for ${repo} after pushing ${ref}: ${out}`)
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
    return id
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
        manifest.push({ Config: `${id}.json`, RepoTags: [withTag(image.tag)], Layers: [layerPath] })
      }
      await writeFile(join(dir, 'img', 'manifest.json'), JSON.stringify(manifest))
      const archive = join(dir, 'image.tar')
      await tar(['-cf', archive, '-C', join(dir, 'img'), '.'])
      await this.docker(['load', '-q', '-i', archive])
      return manifest.map(entry => `sha256:${entry.Config.replace(/\.json$/, '')}`)
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
    const list = await apiJson<ApiImage[]>(this.socket, 'GET', '/images/json?all=1')
    return list.map(i => ({
      id: i.Id,
      tags: real(i.RepoTags),
      digests: real(i.RepoDigests),
      parent: i.ParentId,
      created: i.Created
    }))
  }

  async containers(): Promise<ContainerInfo[]> {
    const list = await apiJson<ApiContainer[]>(this.socket, 'GET', '/containers/json?all=1')
    return list.map(c => ({ id: c.Id, image: c.ImageID, state: c.State }))
  }

  async layersSize(): Promise<number> {
    return (await apiJson<{ LayersSize: number }>(this.socket, 'GET', '/system/df')).LayersSize
  }

  async diskBytes(): Promise<number> {
    const out = await new Promise<string>((resolve, reject) => {
      execFile('du', ['-sbx', this.dataRoot], (err, stdout, stderr) => (err ? reject(new Error(`du: ${stderr}`)) : resolve(stdout)))
    })
    return Number(out.split(/\s/)[0])
  }

  /**
   * Removes every container and image of this engine, leaf images first because parents cannot be forced out.
   * With keepBusybox the engine ends holding exactly the busybox image (built if missing), so every test starts alike.
   */
  async wipe(opts: { keepBusybox?: boolean } = {}): Promise<void> {
    for (const c of await this.containers()) await this.remove(`/containers/${c.id}?force=1&v=1`)
    const keep = opts.keepBusybox ? await this.lineage(await this.busybox()) : new Set<string>()
    // Each round removes at least one image, so more rounds than images means removal is stuck.
    for (let round = (await this.images()).length; round >= 0; round--) {
      const leaves = await this.leaves(keep)
      if (leaves.length === 0) break
      for (const id of leaves) await this.remove(`/images/${id}?force=1`)
    }
    const left = (await this.images()).filter(i => !keep.has(i.id))
    if (left.length > 0) throw new Error(`wipe left images behind: ${JSON.stringify(left)}`)
    await this.untagKeptExtras(keep)
  }

  /** Tags or pushes a test gave the busybox image would otherwise outlive the test. */
  private async untagKeptExtras(keep: Set<string>): Promise<void> {
    const kept = (await this.images()).filter(i => keep.has(i.id))
    const extras = kept.flatMap(i => [...i.tags, ...i.digests]).filter(ref => ref !== BUSYBOX)
    for (const ref of extras) await this.remove(`/images/${ref}`)
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

function tar(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('tar', args, (err, _stdout, stderr) => (err ? reject(new Error(`tar ${args.join(' ')}: ${stderr}`)) : resolve()))
  })
}
