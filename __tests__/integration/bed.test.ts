import { request } from 'node:http'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { apiJson } from '../../testbed/api'
import { layersSizeCountsBlobs } from '../../testbed/engine'
import { BUSYBOX, type ImageInfo } from '../../testbed/scene'
import { bed, REPO_ROOT, runAction } from './harness'

const { scene, registry, root } = bed()
const store = bed().engine.imageStore

beforeEach(() => scene.wipe({ keepBusybox: true }))

function ancestors(images: ImageInfo[], id: string): string[] {
  const parentOf = new Map(images.map(i => [i.id, i.parent]))
  const chain: string[] = []
  for (let p = parentOf.get(id) ?? ''; p !== ''; p = parentOf.get(p) ?? '') chain.push(p)
  return chain
}

function registryDigest(repo: string, tag: string): Promise<string | undefined> {
  // The containerd store pushes an OCI manifest, which the registry serves only to a client that accepts one.
  const accept = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json'
  const [host, port] = registry.split(':')
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port: Number(port), method: 'HEAD', path: `/v2/${repo}/manifests/${tag}`, headers: { accept } },
      res => {
        res.resume()
        resolve(res.headers['docker-content-digest'] as string | undefined)
      }
    )
    req.on('error', reject)
    req.end()
  })
}

// Podman's LayersSize is always 0: there the data root's size tells. Docker 28.2's containerd
// store counts each layer's blob beside its snapshot.
test('images built FROM one tagged base share its layers, so storage grows by the new layers only (on Podman, the disk)', async () => {
  const perLayer = layersSizeCountsBlobs(bed().engine) ? 2 : 1
  const measure = (): Promise<number> => (store === 'podman' ? scene.diskBytes() : scene.layersSize())
  const before = await measure()
  const base = await scene.build('bed/base:1', { bytes: 300_000 })
  const afterBase = await measure()
  const a = await scene.build(['bed/a:1', 'bed/a:alias'], { from: 'bed/base:1', bytes: 100_000, labels: { role: 'a' } })
  const afterA = await measure()
  const b = await scene.build('bed/b:1', { from: 'bed/base:1', bytes: 100_000 })
  const afterB = await measure()

  expect(afterBase - before).toBeGreaterThanOrEqual(300_000 * perLayer)
  for (const growth of [afterA - afterBase, afterB - afterA]) {
    expect(growth).toBeGreaterThanOrEqual(100_000 * perLayer)
    expect(growth).toBeLessThan(100_000 * perLayer + 100_000)
  }
  const images = await scene.images()
  expect(ancestors(images, a)).toContain(base)
  expect(ancestors(images, b)).toContain(base)
  expect(images.find(i => i.id === a)?.tags.sort()).toEqual(['bed/a:1', 'bed/a:alias'])
  const copyStep = images.find(i => i.id === images.find(j => j.id === a)?.parent)
  expect(copyStep?.tags).toEqual([])
  const inspect = await apiJson<{ Config: { Labels: Record<string, string> } }>(
    scene.socket,
    'GET',
    `/images/${a}/json`
  )
  // Podman's builder (buildah) labels every image it builds with its version.
  expect(inspect.Config.Labels).toEqual(
    store === 'podman' ? { role: 'a', 'io.buildah.version': expect.any(String) } : { role: 'a' }
  )
})

test('diskBytes counts the data root and grows with a build', async () => {
  const before = await scene.diskBytes()
  await scene.build('bed/disk:1', { bytes: 300_000 })
  expect((await scene.diskBytes()) - before).toBeGreaterThanOrEqual(300_000)
})

// Podman pushes a manifest of its own making and records the local one's digest instead.
test('push answers the digest the engine records for the tag: the one the registry serves (Docker), another (Podman)', async () => {
  const ref = `${registry}/bed/pushed:1`
  const id = await scene.build(ref)
  const digest = await scene.push(ref)

  expect(digest).toMatch(new RegExp(`^${registry}/bed/pushed@sha256:[0-9a-f]{64}$`))
  const served = await registryDigest('bed/pushed', '1')
  expect(served).toMatch(/^sha256:[0-9a-f]{64}$/)
  expect(served === digest.split('@')[1]).toBe(store !== 'podman')
  expect((await scene.images()).find(i => i.id === id)?.digests).toEqual([digest])
})

test('old() loads an image whose Created is years ago', async () => {
  const id = await scene.old('bed/old:2019', '2019-03-01T00:00:00Z', 10_000)
  const image = (await scene.images()).find(i => i.id === id)
  expect(image?.created).toBe(Date.parse('2019-03-01T00:00:00Z') / 1000)
  expect(image?.tags).toEqual(['bed/old:2019'])
})

test('dangling() leaves an untagged image behind the rebuilt tag', async () => {
  const id = await scene.dangling('bed/dang')
  const images = await scene.images()
  expect(images.find(i => i.id === id)?.tags).toEqual([])
  expect(images.find(i => i.tags.includes('bed/dang:tmp'))?.id).not.toBe(id)
})

test('containers run and stop on images built FROM the static busybox', async () => {
  const image = await scene.build('bed/app:1', { from: BUSYBOX, bytes: 1_000 })
  const running = await scene.runContainer(image, { running: true })
  const stopped = await scene.runContainer('bed/app:1', { running: false })
  const containers = await scene.containers()

  expect(containers.find(c => c.id === running)).toMatchObject({ image, state: 'running' })
  expect(containers.find(c => c.id === stopped)).toMatchObject({ image, state: 'exited' })
})

test('wipe() removes every container and image, keeping busybox only when asked', async () => {
  const busybox = await scene.busybox()
  await scene.tag(BUSYBOX, 'bed/w:alias')
  await scene.build('bed/w:1', { from: BUSYBOX, labels: { x: 'y' } })
  await scene.runContainer('bed/w:1', { running: true })
  await scene.old('bed/w:old', '2020-01-01T00:00:00Z')
  await scene.dangling('bed/w')

  await scene.wipe({ keepBusybox: true })
  expect(await scene.containers()).toEqual([])
  const tagged = (await scene.images()).filter(i => i.tags.length > 0)
  // The containerd store and Podman list a digest for every tagged name, a view of the image's own.
  const digests = store === 'overlay2' ? [] : [expect.stringMatching(/^testbed\/busybox@sha256:[0-9a-f]{64}$/)]
  expect(tagged).toEqual([expect.objectContaining({ id: busybox, tags: [BUSYBOX], digests })])

  await scene.wipe()
  expect(await scene.images()).toEqual([])
})

test('runAction gives the entry point inputs, command files and DOCKER_HOST the way the runner does', async () => {
  const core = pathToFileURL(join(REPO_ROOT, 'node_modules/@actions/core/lib/core.js')).href
  const probe = join(root, 'probe.mjs')
  await writeFile(
    probe,
    [
      `import * as core from ${JSON.stringify(core)}`,
      `for (const name of ['refs', 'keep-duration', 'summary']) core.setOutput(name, core.getInput(name))`,
      `core.setOutput('multi', 'a\\nb=c')`,
      `core.setOutput('docker-host', process.env.DOCKER_HOST ?? 'unset')`,
      `core.setOutput('leak', process.env.INPUT_LEAK ?? 'none')`,
      `core.saveState('phase', 'main')`,
      `await core.summary.addRaw('# reclaimed').write()`,
      `console.error('to stderr')`,
      `process.exitCode = 3`
    ].join('\n')
  )
  process.env.INPUT_LEAK = 'from the parent'
  try {
    const run = await runAction({ 'keep-duration': '7d' }, { script: probe })
    expect(run).toMatchObject({ code: 3, summary: expect.stringContaining('# reclaimed'), state: { phase: 'main' } })
    expect(run.stderr).toContain('to stderr')
    expect(run.outputs).toEqual({
      refs: '',
      'keep-duration': '7d',
      summary: 'true',
      multi: 'a\nb=c',
      'docker-host': bed().host,
      leak: 'none'
    })
    const unset = await runAction({}, { script: probe, env: { DOCKER_HOST: '' } })
    expect(unset.outputs['docker-host']).toBe('unset')
  } finally {
    delete process.env.INPUT_LEAK
  }
})
