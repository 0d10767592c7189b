import { expect } from '@jest/globals'
import type { Scene } from '../../testbed/scene'
import type { ActionRun } from './harness'

export interface Skipped {
  ref: string
  id: string
  reason: string
  message: string
}

/** The outputs of a finished run, typed; fails the test when the step itself failed. */
export function succeeded(run: ActionRun): { bytes: number; deleted: string[]; untagged: string[]; skipped: Skipped[] } {
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

/** Per deleted image: its config, layer metadata files and directories (a few kB each), never a whole test layer. */
const METADATA_SLACK = 64 * 1024

/**
 * The independent truths: the data directory falls by the bytes reported,
 * give or take metadata, and so does the engine's LayersSize exactly. That
 * figure counts only layers images reference, so when a container keeps a
 * deleted image's layers it falls although the disk does not: then only
 * the disk is asked.
 */
export function expectReclaimed(
  bytes: number,
  before: Storage,
  after: Storage,
  deletedImages: number,
  opts: { containerKeepsLayers?: boolean } = {}
): void {
  expect(bytes).toBeGreaterThanOrEqual(0)
  if (!opts.containerKeepsLayers) expect(before.layers - after.layers).toBe(bytes)
  const slack = METADATA_SLACK * (deletedImages + 1)
  expect(Math.abs(before.disk - after.disk - bytes)).toBeLessThanOrEqual(slack)
}

export async function tagsOf(scene: Scene): Promise<string[]> {
  return (await scene.images()).flatMap(image => image.tags).sort()
}

export async function idsOf(scene: Scene): Promise<string[]> {
  return (await scene.images()).map(image => image.id).sort()
}
