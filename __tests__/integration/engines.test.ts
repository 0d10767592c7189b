import { existsSync, readFileSync, readlinkSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeEach, describe, expect, test } from '@jest/globals'
import { rawApi, upgradesToGrpc } from '../../testbed/api'
import { flavourFromEnv, layersSizeCountsBlobs, type ImageStore } from '../../testbed/engine'
import { BUSYBOX } from '../../testbed/scene'
import { bed } from './harness'

// What the bed relies on, per engine flavour (testbed/ENGINES.md says why each matters).
const { scene, engine, root, dataRoot } = bed()
const MB = 1_000_000
const store: ImageStore = engine.imageStore
/** The engine's own newest API version: its native answer, not the bed's pinned v1.41. */
const v = `/v${engine.apiVersion}`
const contentInLayersSize = layersSizeCountsBlobs(engine)
const onContainerd = store === 'containerd' ? test : test.skip
const withBuildKit = engine.buildkit ? test : test.skip
const withoutBuildKit = engine.buildkit ? test.skip : test
// GET /images/json?manifests=1 is API 1.47 and later.
const withManifestList = engine.buildkit && Number(engine.apiVersion.split('.')[1]) >= 47 ? test : test.skip

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

async function json<T>(path: string): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const res = await rawApi(scene.socket, 'GET', path)
    if (res.status === 200) return JSON.parse(res.body) as T
    // The containerd store's /system/df fails while its garbage collector takes a snapshot the
    // answer was sizing ("snapshot <id> does not exist"): asked again, it answers.
    const raced = res.status === 404 && /snapshot \S+ does not exist/.test(res.body)
    if (!raced || attempt === 5) throw new Error(`GET ${path} answered ${res.status}: ${res.body}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

interface RawImage {
  Id: string
  ParentId: string
  RepoTags: string[] | null
  RepoDigests: string[] | null
  Size: number
}

async function rawImage(id: string): Promise<RawImage> {
  const hex = id.replace(/^sha256:/, '')
  const found = (await json<RawImage[]>(`${v}/images/json?all=1`)).find(i => i.Id.replace(/^sha256:/, '') === hex)
  if (found === undefined) throw new Error(`${id} is not in the image list`)
  return found
}

async function argvOf(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
}

async function processesNamed(name: string): Promise<Array<{ pid: number; argv: string[] }>> {
  const found: Array<{ pid: number; argv: string[] }> = []
  for (const pid of (await readdir('/proc')).filter(d => /^\d+$/.test(d)).map(Number)) {
    const argv = await argvOf(pid).catch(() => [''])
    if (argv[0].split('/').pop() === name) found.push({ pid, argv })
  }
  return found
}

describe(`the ${engine.flavour} engine`, () => {
  test('is the flavour RECLAIM_ENGINE asks for, and says so itself', async () => {
    expect(engine.flavour).toBe(flavourFromEnv())
    const version = await json<{ Version: string; ApiVersion: string }>('/version')
    expect({ version: version.Version, apiVersion: version.ApiVersion }).toEqual({
      version: engine.version,
      apiVersion: engine.apiVersion
    })
    const expected = {
      docker20: { major: '20.10.', api: '1.41', store: 'overlay2', buildkit: true },
      docker26: { major: '26.', api: '1.45', store: 'overlay2', buildkit: true },
      'docker26-containerd': { major: '26.', api: '1.45', store: 'containerd', buildkit: true },
      docker28: { major: '28.', api: '1.51', store: 'overlay2', buildkit: true },
      'docker28-containerd': { major: '28.', api: '1.51', store: 'containerd', buildkit: true },
      podman: { major: '4.3.', api: '1.41', store: 'podman', buildkit: false }
    }[engine.flavour]
    expect(engine.version.startsWith(expected.major)).toBe(true)
    expect(engine.apiVersion).toBe(expected.api)
    expect(store).toBe(expected.store)
    expect(engine.buildkit).toBe(expected.buildkit)
    expect(await upgradesToGrpc(scene.socket)).toBe(expected.buildkit)
  })

  test('keeps its images under the bed root, where diskBytes() measures', async () => {
    const info = await json<{ DockerRootDir: string; Driver: string }>('/v1.41/info')
    expect(info.DockerRootDir).toBe(dataRoot)
    expect(dataRoot.startsWith(`${root}/`)).toBe(true)
    expect(info.Driver).toBe({ overlay2: 'overlay2', containerd: 'overlayfs', podman: 'overlay' }[store])
  })

  test('runs its helpers privately: their sockets, state and storage are under the bed root', async () => {
    if (store === 'podman') {
      // The service runs in a mount namespace of its own, in which the machine's /var/lib/containers
      // and /run/runc are covered by directories under the bed root.
      const [service] = (await processesNamed('podman')).filter(p => p.argv.includes(`--root=${dataRoot}`))
      expect(service).toBeDefined()
      expect(readlinkSync(`/proc/${service.pid}/ns/mnt`)).not.toBe(readlinkSync('/proc/self/ns/mnt'))
      const mounts = readFileSync(`/proc/${service.pid}/mountinfo`, 'utf8')
        .split('\n')
        .map(l => l.split(' ')[4])
      expect(mounts).toEqual(expect.arrayContaining(['/var/lib/containers', '/run/runc']))
      const config = await readFile(join(root, 'containers.conf'), 'utf8')
      expect(config).toContain(`tmp_dir = "${join(root, 'tmp')}"`)
      expect(config).toContain('lock_type = "file"')
      return
    }
    // dockerd starts its own containerd: its config names a root, state and socket under ours.
    const ours = (await processesNamed('containerd')).filter(p => p.argv.some(a => a.startsWith(`${root}/`)))
    expect(ours).toHaveLength(1)
    const toml = await readFile(ours[0].argv[ours[0].argv.indexOf('--config') + 1], 'utf8')
    for (const key of ['root', 'state', 'address']) {
      const value = toml.match(new RegExp(`^\\s*${key} = "([^"]*)"`, 'm'))?.[1]
      expect(value?.startsWith(`${root}/`)).toBe(true)
    }
  })

  onContainerd("keeps the containerd store's content and snapshots under the data root", async () => {
    const id = await scene.build('facts/content:1', { bytes: 1000 })
    const daemon = join(dataRoot, 'containerd', 'daemon')
    // The image ID is its manifest's digest, and the manifest is a blob of the content store.
    expect(
      existsSync(join(daemon, 'io.containerd.content.v1.content', 'blobs', 'sha256', id.slice('sha256:'.length)))
    ).toBe(true)
    expect(existsSync(join(daemon, 'io.containerd.snapshotter.v1.overlayfs', 'snapshots'))).toBe(true)
  })

  test('gives the bed containers no network but none', async () => {
    const id = await scene.runContainer(BUSYBOX, { running: true })
    const inspect = await json<{
      HostConfig: { NetworkMode: string }
      NetworkSettings: { Networks: Record<string, unknown> | null }
    }>(`/v1.41/containers/${id}/json`)
    expect(inspect.HostConfig.NetworkMode).toBe('none')
    expect(Object.keys(inspect.NetworkSettings.Networks ?? {}).filter(n => n !== 'none')).toEqual([])
  })

  test('names images in /images/json the way ENGINES.md says', async () => {
    const id = await scene.build('facts/name:1', { bytes: 1000 })
    const raw = await rawImage(id)
    const expected = {
      overlay2: { tags: ['facts/name:1'], digests: [] },
      // Every tagged name also shows as name@<the image's own manifest digest>, pushed or not.
      containerd: { tags: ['facts/name:1'], digests: [`facts/name@${id}`] },
      // Fully qualified, and a digest of a manifest no registry has seen.
      podman: {
        tags: ['docker.io/facts/name:1'],
        digests: [expect.stringMatching(/^docker\.io\/facts\/name@sha256:[0-9a-f]{64}$/)]
      }
    }[store]
    expect({ tags: raw.RepoTags, digests: raw.RepoDigests ?? [] }).toEqual(expected)
    // The bed's own view is Docker's familiar form everywhere.
    expect((await scene.images()).find(i => i.id === id)?.tags).toEqual(['facts/name:1'])
  })

  test('reports the parent of a legacy-builder image, in its own spelling', async () => {
    const child = await scene.build('facts/child:1', { bytes: 1000, labels: { step: 'two' } })
    const parent = (await scene.images()).find(i => i.id === child)?.parent ?? ''
    expect(parent).toMatch(/^sha256:[0-9a-f]{64}$/)
    const raw = await rawImage(child)
    expect(raw.ParentId).toBe(store === 'podman' ? parent.slice('sha256:'.length) : parent)
  })

  test('lists in Deleted what ENGINES.md says when the last tag of a one-layer image goes', async () => {
    const id = await scene.build('facts/solo:1', { bytes: MB })
    const inspect = await json<{ RootFS: { Layers: string[] } }>(`${v}/images/${id}/json`)
    expect(inspect.RootFS.Layers).toHaveLength(1)
    const res = await rawApi(scene.socket, 'DELETE', `${v}/images/facts/solo:1`)
    expect(res.status).toBe(200)
    const items = JSON.parse(res.body) as Array<{ Untagged?: string; Deleted?: string }>
    const deleted = items.flatMap(i => (i.Deleted ? [i.Deleted] : []))
    const untagged = items.flatMap(i => (i.Untagged ? [i.Untagged] : []))
    const expected = {
      // The image ID, then the ChainID of every layer that left (one layer: its DiffID).
      overlay2: { untagged: ['facts/solo:1'], deleted: [id, inspect.RootFS.Layers[0]] },
      // The image (manifest) digest only: nothing says which layers or blobs went.
      containerd: { untagged: ['facts/solo:1'], deleted: [id] },
      // The image ID as bare hex, and only that.
      podman: { untagged: ['docker.io/facts/solo:1'], deleted: [id.slice('sha256:'.length)] }
    }[store]
    expect({ untagged, deleted }).toEqual(expected)
  })

  test('counts a new 1 MB layer in LayersSize and on disk the way ENGINES.md says', async () => {
    const before = { layers: await scene.layersSize(), disk: await scene.diskBytes() }
    const id = await scene.build('facts/mb:1', { bytes: MB })
    const after = { layers: await scene.layersSize(), disk: await scene.diskBytes() }
    const size = (await rawImage(id)).Size
    const grew = { layers: after.layers - before.layers, disk: after.disk - before.disk }
    if (store === 'overlay2') {
      expect(grew.layers).toBe(MB)
      expect(size).toBe(MB)
    } else if (store === 'containerd') {
      if (contentInLayersSize) {
        // The snapshot and the blobs: all of a lone image's Size.
        expect(grew.layers).toBe(size)
      } else {
        // A snapshot (rounded to 4 KiB blocks) in LayersSize; Size adds the compressed blob too.
        expect(grew.layers).toBeGreaterThanOrEqual(MB)
        expect(grew.layers).toBeLessThan(MB + 64 * 1024)
      }
      expect(size).toBeGreaterThan(2 * MB)
      expect(grew.disk).toBeGreaterThan(2 * MB)
    } else {
      expect(after.layers).toBe(0)
      expect(size).toBeGreaterThanOrEqual(MB)
      expect(size).toBeLessThan(MB + 64 * 1024)
    }
    expect(grew.disk).toBeGreaterThanOrEqual(MB)
  })

  test('settles LayersSize after a build at once, or (containerd store) once its garbage collector ran', async () => {
    const raw = async (): Promise<number> => (await json<{ LayersSize: number }>(`${v}/system/df`)).LayersSize
    const before = await scene.layersSize()
    const id = await scene.build('facts/settle:1', { bytes: MB })
    const atOnce = (await raw()) - before
    const settled = (await scene.layersSize()) - before
    if (store === 'containerd') {
      // Until the collector runs, the builder's snapshot of the COPY step counts the new layer
      // twice; on a busy machine it may already have run when the build returns.
      expect(atOnce === settled || atOnce - settled >= MB).toBe(true)
      if (contentInLayersSize) {
        expect(settled).toBe((await rawImage(id)).Size)
      } else {
        expect(settled).toBeGreaterThanOrEqual(MB)
        expect(settled).toBeLessThan(MB + 64 * 1024)
      }
    } else {
      expect(settled).toBe(atOnce)
    }
  })

  withBuildKit(
    'builds with its own BuildKit: one image without parents, and a build cache that wipe() clears',
    async () => {
      const id = await scene.build('facts/bk:1', { bytes: MB, builder: 'buildkit', labels: { step: 'two' } })
      // No step images, LABEL or not: the COPY step lives on in the build cache instead.
      const image = (await scene.images()).find(i => i.id === id)
      expect(image).toMatchObject({ tags: ['facts/bk:1'], parent: '' })
      const cache = await scene.buildCache()
      const steps = cache.filter(r => r.Type === 'regular')
      expect(steps).toHaveLength(1)
      // Shared: the image holds the same data. Its size is the layer's (overlay2) or blob and snapshot (containerd).
      expect(steps[0]).toMatchObject({ Shared: true, InUse: false })
      if (store === 'overlay2') expect(steps[0].Size).toBe(MB)
      else {
        expect(steps[0].Size).toBeGreaterThanOrEqual(2 * MB)
        expect(steps[0].Size).toBeLessThan(2 * MB + 64 * 1024)
      }
      // The build context as the engine received it.
      expect(cache.some(r => r.Type === 'source.local' && r.Size >= MB)).toBe(true)
      expect(existsSync(join(dataRoot, 'buildkit'))).toBe(true)
      await scene.wipe({ keepBusybox: true })
      expect(await scene.buildCache()).toEqual([])
    }
  )

  withManifestList(
    'stores what buildx adds: a provenance attestation beside the image on the containerd store (overlay2 lists no manifests)',
    async () => {
      const id = await scene.build('facts/attested:1', { bytes: 1000, builder: 'buildkit' })
      const listed = (
        await json<Array<{ Id: string; Manifests?: Array<{ Kind: string }> }>>(`${v}/images/json?manifests=1`)
      ).find(i => i.Id === id)
      expect(listed).toBeDefined()
      expect(listed?.Manifests?.map(m => m.Kind)).toEqual(store === 'containerd' ? ['image', 'attestation'] : undefined)
    }
  )

  withoutBuildKit(
    'has no BuildKit: the Scene refuses a BuildKit build rather than let buildx fall back to a builder it would pull',
    async () => {
      await expect(scene.build('facts/bk:1', { builder: 'buildkit' })).rejects.toThrow(/has no BuildKit/)
      expect(await scene.exists('facts/bk:1')).toBe(false)
      expect(await scene.buildCache()).toEqual([])
    }
  )
})
