import * as core from '@actions/core'
import { connect, type Engine } from './engine'
import { resolveHost } from './endpoint'
import { plan, type Plan } from './plan'
import { execute, type Execution } from './remove'
import { shortId } from './simulation'
import { formatBytes } from './units'
import type { Settings } from './inputs'
import type { EngineState, Image, Skip, SkipReason } from './model'

/** One line of the report: a removal that happened (or would), or a skip. */
export interface Row {
  ref: string
  id: string
  created?: number
  bytes: number
  outcome: 'deleted' | 'untagged' | SkipReason
}

export interface Result {
  endpoint: string
  dryRun: boolean
  /** Bytes of image storage freed (or, in a dry run, that would be). */
  bytes: number
  deleted: string[]
  untagged: string[]
  skipped: Skip[]
  rows: Row[]
  storageBefore: number
  storageAfter: number
  now: number
}

/** The whole job: read the engine, plan, remove, and account for it. */
export async function reclaim(settings: Settings, now = Date.now()): Promise<Result> {
  const endpoint = await resolveHost(settings.dockerHost)
  const engine = await connect(endpoint)
  core.info(`Engine: ${endpoint} (API ${engine.apiVersion})`)
  const { state, planned } = await core.group('Planning', () => planAgainst(engine, settings, now))
  const storageBefore = await engine.storage()
  const execution = await core.group(settings.dryRun ? 'Dry run' : 'Removing', () => execute(engine, planned, settings.dryRun))
  const storageAfter = settings.dryRun ? storageBefore - execution.bytes : await engine.storage()
  return summarize(endpoint, settings.dryRun, state, planned, execution, { storageBefore, storageAfter, now })
}

/**
 * Plans on the image list alone first; layer chains are read (one inspect
 * per image) only when something is to be deleted, to price it.
 */
async function planAgainst(engine: Engine, settings: Settings, now: number): Promise<{ state: EngineState; planned: Plan }> {
  const [images, containers] = await Promise.all([engine.images(), engine.containers()])
  const state: EngineState = { images, containers, layers: new Map() }
  let planned = plan(state, settings, now)
  if (planned.steps.some(step => step.deleted)) {
    state.layers = await engine.layers(images)
    planned = plan(state, settings, now)
  }
  const deletions = planned.steps.filter(step => step.deleted).length
  core.info(
    `${images.length} images, ${containers.length} containers; plan: ${planned.steps.length} requests, ` +
      `${deletions} images to delete, ${formatBytes(planned.bytes)} to free, ${planned.skipped.length} skipped`
  )
  for (const { ref, id } of planned.filteredOut) core.info(`${ref} (${shortId(id)}) is left out by the filters`)
  return { state, planned }
}

function summarize(
  endpoint: string,
  dryRun: boolean,
  state: EngineState,
  planned: Plan,
  execution: Execution,
  extra: { storageBefore: number; storageAfter: number; now: number }
): Result {
  const byId = new Map<string, Image>(state.images.map(image => [image.id, image]))
  const skipped = [...planned.skipped, ...execution.skipped]
  const rows: Row[] = [
    ...execution.done.map(done => ({
      ref: done.step.named ? done.step.cause : (done.untagged[0] ?? '<none>'),
      id: done.step.imageId,
      created: byId.get(done.step.imageId)?.created,
      bytes: done.bytes,
      outcome: done.deletedImages.length > 0 ? ('deleted' as const) : ('untagged' as const)
    })),
    ...skipped.map(skip => ({ ref: skip.ref, id: skip.id, created: byId.get(skip.id)?.created, bytes: 0, outcome: skip.reason }))
  ]
  return {
    endpoint,
    dryRun,
    bytes: execution.bytes,
    deleted: execution.done.flatMap(done => done.deletedImages),
    untagged: execution.done.flatMap(done => done.untagged),
    skipped,
    rows,
    ...extra
  }
}
