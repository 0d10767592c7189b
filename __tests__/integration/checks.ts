import { expect } from '@jest/globals'
import { bed } from '../../testbed/bed'
import type { Scene } from '../../testbed/scene'
import { runAction, type ActionRun } from './harness'

/** The image store of the engine under test: testbed/ENGINES.md says how each keeps and frees layers. */
export const store = bed().engine.imageStore

/** Whether the engine under test speaks this API version or a newer one. */
export function apiAtLeast(wanted: string): boolean {
  const [major, minor] = bed().engine.apiVersion.split('.').map(Number)
  const [wantedMajor, wantedMinor] = wanted.split('.').map(Number)
  return major > wantedMajor || (major === wantedMajor && minor >= wantedMinor)
}

/**
 * The first BuildKit build on a fresh engine leaves a blob of about 135 kB and a page of BuildKit's
 * history.db that arrive after the build returned (seen on docker26-containerd): a file that builds
 * with BuildKit makes one build first, in its beforeAll, so that no test measures them.
 */
export async function firstBuildKitBuild(): Promise<void> {
  const { scene, engine } = bed()
  if (engine.buildkit) await scene.build('bk/first:1', { builder: 'buildkit', bytes: 1000 })
}

export interface Skipped {
  ref: string
  id: string
  reason: string
  message: string
}

/** The outputs of a finished run, typed; fails the test when the step itself failed. */
export function succeeded(run: ActionRun): {
  bytes: number
  deleted: string[]
  untagged: string[]
  skipped: Skipped[]
} {
  if (run.code !== 0) throw new Error(`the step failed (${run.code}):\n${run.stdout}\n${run.stderr}`)
  return parsed(run)
}

export function parsed(run: ActionRun): { bytes: number; deleted: string[]; untagged: string[]; skipped: Skipped[] } {
  return {
    bytes: Number(run.outputs['reclaimed-bytes']),
    deleted: JSON.parse(run.outputs.deleted ?? '[]') as string[],
    untagged: JSON.parse(run.outputs.untagged ?? '[]') as string[],
    skipped: JSON.parse(run.outputs.skipped ?? '[]') as Skipped[]
  }
}

export interface Storage {
  layers: number
  disk: number
}

export async function storage(scene: Scene): Promise<Storage> {
  const [layers, disk] = await Promise.all([scene.layersSize(), scene.diskBytes()])
  return { layers, disk }
}

/**
 * A dry run of the inputs, then the real run of the same inputs, with the storage measured before
 * and after the real run; `measureFirst` measures before the dry run instead. Fails the test when
 * the real run fails; the dry run is returned as it is, for the test to read.
 */
export async function dryThenReal(
  inputs: Record<string, string>,
  opts: { measureFirst?: boolean } = {}
): Promise<{ dry: ActionRun; run: ActionRun; out: ReturnType<typeof succeeded>; before: Storage; after: Storage }> {
  const { scene } = bed()
  const early = opts.measureFirst ? await storage(scene) : undefined
  const dry = await runAction({ ...inputs, 'dry-run': 'true' })
  const before = early ?? (await storage(scene))
  const run = await runAction(inputs)
  const out = succeeded(run)
  return { dry, run, out, before, after: await storage(scene) }
}

/** Per deleted image: its config, layer metadata files and directories (a few kB each), never a whole test layer. */
const METADATA_SLACK = 64 * 1024

/**
 * The independent truth: the data directory falls by the bytes reported, give or take metadata.
 * On overlay2 the engine's LayersSize falls by exactly that too. That figure counts only layers
 * images reference, so when a container keeps a deleted image's layers it falls although the disk
 * does not: then only the disk is asked. The other stores have no such figure: the containerd
 * store's LayersSize counts the unpacked snapshots but not the blobs a removal frees as well, and
 * Podman's is always 0.
 */
export function expectReclaimed(
  bytes: number,
  before: Storage,
  after: Storage,
  deletedImages: number,
  opts: { containerKeepsLayers?: boolean } = {}
): void {
  expect(bytes).toBeGreaterThanOrEqual(0)
  if (!opts.containerKeepsLayers && store === 'overlay2') expect(before.layers - after.layers).toBe(bytes)
  const slack = METADATA_SLACK * (deletedImages + 1)
  expect(Math.abs(before.disk - after.disk - bytes)).toBeLessThanOrEqual(slack)
}

/**
 * What layers of the given numbers of random bytes take in this engine's store, which is what
 * removing them frees: on overlay2 exactly their size; on the containerd store the compressed
 * blob and the unpacked snapshot, each at least the size (random bytes do not compress), plus
 * tar headers and padding (a loaded layer's blob is the archive's tar, padded to 10 kB records),
 * 4 kB blocks and the image's config and manifest; on Podman the layer's tar, that is the size
 * plus headers, and the image's metadata.
 */
export function layerBytes(...sizes: number[]): { min: number; max: number } {
  const total = sizes.reduce((a, b) => a + b, 0)
  const [factor, overhead] = { overlay2: [1, 0], containerd: [2, 24 * 1024], podman: [1, 16 * 1024] }[store]
  return { min: factor * total, max: factor * total + overhead * sizes.length }
}

/** `bytes` is what layers of these sizes free in this engine's store (see layerBytes). */
export function expectLayerBytes(bytes: number, ...sizes: number[]): void {
  const { min, max } = layerBytes(...sizes)
  expect(bytes).toBeGreaterThanOrEqual(min)
  expect(bytes).toBeLessThanOrEqual(max)
}

/** `layerBytes` of `count` layers of `size` bytes each. */
export const times = (count: number, size: number): number[] => Array.from({ length: count }, () => size)

export async function tagsOf(scene: Scene): Promise<string[]> {
  return (await scene.images()).flatMap(image => image.tags).sort()
}

export async function idsOf(scene: Scene): Promise<string[]> {
  return (await scene.images()).map(image => image.id).sort()
}
