import { diskUnderDataRoot, freeUnderDataRoot } from '../engine/disk'
import type { DiskUsage, Engine } from '../engine/engine'
import type { Settings } from '../settings/settings'
import { namedRef, plan, price, prunesDanglingOnly, type Plan, type Selection, type Targets } from '../plan/plan'
import { execute, type Execution } from './remove'
import { shortId } from '../common/ids'
import { unsharedLayers } from '../engine/layers'
import { mayHoldLayer } from '../plan/cache-holds'
import { holdInState, readCacheHolds } from './cache-holds'
import { formatBytes } from '../common/units'
import type { Log } from './log'
import { recordedUse } from './recorded-use'
import type { EngineState, Image, Layer, Skip, SkipReason, Snapshot } from '../plan/model'
import { cacheAlone, evictCache, reclaimCache, type CacheResult } from './cache'

/** One line of the report: a removal that happened (or would), or a skip. */
export interface Row {
  ref: string
  id: string
  created?: number
  bytes: number
  outcome: 'deleted' | 'untagged' | SkipReason
  /** Removed only to meet a storage target, not because refs or prune chose it. */
  forTarget?: boolean
}

export interface Result {
  endpoint: string
  dryRun: boolean
  /** Only what the job added was considered (the post step of `scope: job`). */
  jobScope: boolean
  /** Bytes of image storage freed (or, in a dry run, that would be). */
  bytes: number
  deleted: string[]
  untagged: string[]
  skipped: Skip[]
  rows: Row[]
  /** The engine's image storage, where it has a figure for what removals free (see Engine.usage). */
  storageBefore?: number
  storageAfter?: number
  /** Set when the settings gave a storage target. */
  target?: TargetResult
  now: number
  /** Set when the engine went away part-way: the step must fail after reporting what it did. */
  interrupted?: string
  /** Job scope on a shared engine: what this job leaves to the others still running (plan/jobs.ts heldKey). */
  leftForOthers: string[]
  /** Where last use came from, when it mattered: the engine's figures, and the host daemon's ledger if there is one. */
  lastUseSource?: string
  /** The build cache step, when `build-cache` asked for one; its bytes are not in `bytes`. */
  cache?: CacheResult
}

export interface TargetResult extends Targets {
  /** Image storage at the end, in the plan's measure. */
  storageAfter: number
  /** The measure counts the build cache's bytes that no image holds too (`build-cache` with a target). */
  withCache?: boolean
  freeBefore?: number
  freeAfter?: number
  met: boolean
  /** Whether a target was crossed, so that eviction started (plan.ts Storage). */
  crossed: boolean
  /** min-free: how far the filesystem came out short of the floor although the run freed all the plan counted on. */
  shortBy?: number
}

interface Planning {
  state: EngineState
  planned: Plan
  /** Where its figures hold (overlay2) and no target is set; kept only when the plan deletes something. */
  usage?: DiskUsage
  lastUseSource?: string
}

/**
 * On the containerd store BuildKit holds the images a build resolved, its base among them, for
 * five minutes after the build, so that a removal within them leaves their snapshots on disk. Any
 * build cache prune ends those holds when no build runs (BuildKit's own rule), and one that matches
 * no record removes nothing: what the run reports then leaves the disk now. Where it fails the
 * holds just run out.
 */
async function endBuildHolds(engine: Engine, log: Log): Promise<void> {
  try {
    const removed = await engine.pruneBuildCache({ all: true, id: NO_RECORD })
    if (removed.length > 0)
      log.warning(`The engine removed build cache records a prune of none named: ${removed.join(', ')}`)
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error)
    log.info(`BuildKit's holds on the images its builds used stay until they run out (5 minutes): ${why}`)
  }
}

/** A build cache record ID filter that no record matches: IDs are never empty. */
const NO_RECORD = '^$'

/** The images on the engine now, for job scope's post step to compare with. */
export async function snapshotImages(engine: Engine, log: Log): Promise<Snapshot> {
  const images = await engine.images()
  log.info(`Recorded the ${images.length} images on ${engine.endpoint}: the post step removes only what the job adds.`)
  return new Map(images.map(image => [image.id, new Set([...image.tags, ...image.digests])]))
}

/** The whole job on an open engine: read it, plan, remove, and account for it. */
export async function reclaim(
  engine: Engine,
  settings: Settings & Pick<Selection, 'preexisting' | 'otherJobs'> & { preexistingCache?: string[] },
  log: Log,
  now = Date.now()
): Promise<Result> {
  const { endpoint } = engine
  log.info(`Engine: ${endpoint} (API ${engine.apiVersion})`)
  settings = { ...settings, targets: await inBytes(engine, settings.targets, log) }
  const { state, planned, usage, lastUseSource } = await log.group('Planning', () =>
    planAgainst(engine, settings, now, log)
  )
  const { targets } = settings
  const storageBefore = targets ? planned.storage.before : measuredStorage(engine, state, planned, usage)
  const options = { dryRun: settings.dryRun, timeoutMs: settings.timeout }
  const execution = await log.group(settings.dryRun ? 'Dry run' : 'Removing', () =>
    execute(engine, planned, options, state.images, log)
  )
  const predicted = storageBefore === undefined ? undefined : storageBefore - execution.bytes
  // The engine is asked again only when this run changed something it could measure: never in a
  // dry run, nor when nothing was sent (/system/df is slow on a large engine), nor after an
  // interrupted run, where it may not answer. Otherwise the prediction stands in.
  const changed = !settings.dryRun && !execution.interrupted && execution.done.length > 0
  if (changed && engine.store === 'containerd') await endBuildHolds(engine, log)
  const storageAfter =
    changed && !targets && storageBefore !== undefined
      ? await engine.usage().then(
          after => after?.layersSize ?? predicted,
          () => predicted
        )
      : predicted
  // After the images, whose removal may leave cache records no image shares any more. Where the
  // cache counts in the targets, only the records the plan evicts go, and the target is judged after.
  const evictions = planned.cache
  const cache =
    execution.interrupted || settings.buildCache === 'none'
      ? undefined
      : await log.group('Build cache', () =>
          evictions
            ? evictCache(engine, evictions, state.buildCache ?? [], settings, log)
            : reclaimCache(engine, settings, now, log, {
                state,
                deleted: execution.done.flatMap(done => done.deletedImages)
              })
        )
  const freed = execution.bytes + (evictions ? (cache?.bytes ?? 0) : 0)
  const cacheChanged = (cache?.removed.length ?? 0) > 0 && !settings.dryRun
  const target =
    targets && (await judge(engine, targets, planned.storage, freed, changed || cacheChanged, evictions !== undefined))
  if (target && !target.met) log.warning(missed(target))
  const jobScope = settings.preexisting !== undefined
  return summarize(endpoint, settings.dryRun, state, planned, execution, {
    storageBefore,
    storageAfter: target?.storageAfter ?? storageAfter,
    target,
    now,
    jobScope,
    lastUseSource,
    cache
  })
}

/**
 * Targets given as a share of the disk, in bytes of the filesystem under the engine's data root:
 * so one setting fits every host of a fleet, whatever its disk.
 */
async function inBytes(engine: Engine, targets: Targets | undefined, log: Log): Promise<Targets | undefined> {
  const parts = [
    ['max-storage', 'maxStoragePercent'],
    ['min-free', 'minFreePercent'],
    ['headroom', 'headroomPercent']
  ] as const
  const given = parts.find(([, key]) => targets?.[key] !== undefined)
  if (!targets || !given) return targets
  const { size } = await diskUnderDataRoot(engine, given[0])
  const share = (percent: number | undefined): number | undefined =>
    percent === undefined ? undefined : Math.floor((size * percent) / 100)
  const resolved = {
    ...targets,
    maxStorage: targets.maxStorage ?? share(targets.maxStoragePercent),
    minFree: targets.minFree ?? share(targets.minFreePercent),
    headroom: targets.headroom ?? share(targets.headroomPercent)
  }
  const bytesOf = { 'max-storage': resolved.maxStorage, 'min-free': resolved.minFree, headroom: resolved.headroom }
  for (const [name, key] of parts) {
    const percent = targets[key]
    const bytes = bytesOf[name]
    if (percent !== undefined && bytes !== undefined) {
      log.info(`${name} ${percent}% of the ${formatBytes(size)} filesystem under the data root: ${formatBytes(bytes)}`)
    }
  }
  return resolved
}

/**
 * Image storage before the run, without a target: only when something is deleted (a plan that
 * deletes nothing does not wait for disk usage). Where the plan read every image's layers and
 * there is no disk usage (an engine before API 1.42 with containers), the plan's measure stands
 * in on overlay2, where the two agree.
 */
function measuredStorage(
  engine: Engine,
  state: EngineState,
  planned: Plan,
  usage: DiskUsage | undefined
): number | undefined {
  if (usage) return usage.layersSize
  const measured = state.layers.size === state.images.length && engine.store === 'graphdriver'
  return measured && deletes(planned) ? planned.storage.before : undefined
}

const deletes = (planned: Plan): boolean => planned.steps.some(step => step.deleted)

/** Whether the targets hold once `freed` bytes have gone: free space is measured again after a real run. */
async function judge(
  engine: Engine,
  targets: Targets,
  storage: Plan['storage'],
  freed: number,
  changed: boolean,
  withCache: boolean
): Promise<TargetResult> {
  const { freeBefore } = storage
  const storageAfter = storage.before - freed
  const predictedFree = freeBefore === undefined ? undefined : freeBefore + freed
  const freeAfter =
    changed && targets.minFree !== undefined
      ? await freeUnderDataRoot(engine).catch(() => predictedFree)
      : predictedFree
  const met =
    (targets.maxStorage === undefined || storageAfter <= targets.maxStorage) &&
    (targets.minFree === undefined || (freeAfter ?? 0) >= targets.minFree)
  const shortBy = shortfall(targets.minFree, predictedFree, freeAfter)
  return {
    ...targets,
    storageAfter,
    freeBefore,
    freeAfter,
    met,
    crossed: storage.crossed,
    ...(withCache ? { withCache } : {}),
    ...(shortBy === undefined ? {} : { shortBy })
  }
}

/**
 * The bytes by which the free space measured after a run missed `min-free` when the bytes the run
 * freed should have reached it: the filesystem is shared, and anything that wrote to it during the
 * run (the engine's own records included) took some of them back.
 */
export function shortfall(
  minFree: number | undefined,
  predictedFree: number | undefined,
  freeAfter: number | undefined
): number | undefined {
  if (minFree === undefined || predictedFree === undefined || freeAfter === undefined) return undefined
  return predictedFree >= minFree && freeAfter < minFree ? minFree - freeAfter : undefined
}

/** The warning of a run after which a target does not hold, with why. */
export function missed(target: TargetResult): string {
  const parts = []
  if (target.maxStorage !== undefined)
    parts.push(
      `${target.withCache ? 'image and build cache storage' : 'image storage'} ends at ` +
        `${formatBytes(target.storageAfter)} (max-storage ${formatBytes(target.maxStorage)})`
    )
  if (target.minFree !== undefined)
    parts.push(`${formatBytes(target.freeAfter ?? 0)} free (min-free ${formatBytes(target.minFree)})`)
  const storageHeld = target.maxStorage === undefined || target.storageAfter <= target.maxStorage
  if (target.shortBy !== undefined && storageHeld)
    return (
      `Storage target not met: ${parts.join(', ')}, ${formatBytes(target.shortBy)} (${target.shortBy} bytes) short. ` +
      'The run freed what the plan counted on, but something else wrote to that filesystem meanwhile (the ' +
      "engine's own records, or other work on the machine); input headroom frees more than the floor asks."
    )
  return `Storage target not met: ${parts.join(', ')}. The rest is kept by keep, keep-last, keep-duration, filters or containers, which a target never overrides.`
}

/**
 * Plans on the image list alone first, and reads layers only once something is to be deleted;
 * when "use" matters (a target, or last-used ages), every layer and tag time is read first.
 */
async function planAgainst(engine: Engine, settings: Settings, now: number, log: Log): Promise<Planning> {
  if (cacheAlone(settings))
    return noImages(engine, settings, now, log, 'build-cache alone: no image is read or removed.')
  const dangling = danglingFirst(engine, settings) ? await engine.hasDangling() : undefined
  if (dangling === false)
    return noImages(engine, settings, now, log, 'The engine lists no dangling image: nothing to remove.')
  const usageMatters =
    settings.targets !== undefined ||
    (settings.ageBasis === 'last-used' && (settings.keepLast || settings.keepDuration !== undefined))
  const early = settings.targets || !(dangling || likelyDeletes(settings)) ? undefined : askUsage(engine)
  try {
    const [images, containers] = await Promise.all([engine.images(), engine.containers()])
    const state: EngineState = { images, containers, layers: new Map(), store: engine.store }
    if (settings.preexisting && settings.otherJobs?.length) await readAppearances(engine, state, settings.preexisting)
    if (settings.targets?.minFree !== undefined) state.freeBytes = await freeUnderDataRoot(engine)
    // The build cache counts in the targets with `build-cache` (plan/cache-budget.ts).
    if (settings.targets && settings.buildCache !== 'none') state.buildCache = await engine.buildCache()
    const recorded = usageMatters ? await recordedUse(engine, log, settings.stateDir) : undefined
    if (recorded) {
      state.recordedUse = recorded.images
      log.info(`Last use: ${recorded.source}`)
    }
    // Otherwise the steps do not depend on sizes: planned on the lists alone, they are priced only
    // once something is to be deleted.
    const unpriced = usageMatters ? undefined : plan(state, settings, now)
    let planned = unpriced
    let usage: DiskUsage | undefined
    if (!planned || deletes(planned)) {
      // A target has the plan measure every layer instead of asking disk usage.
      usage = settings.targets ? undefined : await (early?.answer ?? engine.usage())
      await readLayers(engine, state, usageMatters ? undefined : usage, log)
      planned = unpriced ? price(unpriced, state.layers) : plan(state, settings, now)
    }
    logPlan(state, planned, log)
    return { state, planned, usage: deletes(planned) ? usage : undefined, lastUseSource: recorded?.source }
  } finally {
    early?.abort()
  }
}

/**
 * Reads when the job's additions appeared, with one inspect for each: for an image the main step
 * did not record, when it was made and last tagged; for a recorded image that has since gained a
 * tag, when it was last tagged. plan/jobs.ts uses these times to decide whether another running
 * job may have made them.
 */
async function readAppearances(engine: Engine, state: EngineState, preexisting: Snapshot): Promise<void> {
  const added = state.images.filter(image => {
    const before = preexisting.get(image.id)
    return !before || [...image.tags, ...image.digests].some(ref => !before.has(ref))
  })
  const { lastTagged, createdAt } = await engine.details(added)
  Object.assign(state, { lastTagged, createdAt })
}

/**
 * Whether to ask the engine for its dangling images before the whole list: where the settings
 * can remove nothing else, and on overlay2, whose filter lists every image the plan would prune
 * (moby's list code; the other stores decide what is dangling by rules of their own). When there
 * is none, the step ends without the whole list, which takes the engine and the action far longer
 * on thousands of images (bench/README.md); when there are some, it costs one request more.
 */
const danglingFirst = (engine: Engine, settings: Settings): boolean =>
  prunesDanglingOnly(settings) && engine.store === 'graphdriver'

/** A plan over no image, where the run needs none read. */
function noImages(engine: Engine, settings: Settings, now: number, log: Log, why: string): Planning {
  log.info(why)
  const state: EngineState = { images: [], containers: [], layers: new Map(), store: engine.store }
  return { state, planned: plan(state, settings, now) }
}

/**
 * Disk usage gives storage before the run and prices most deletions. Asked beside the lists, the
 * engine works on both at once: that saves the wait for it when something is deleted, but delays
 * a step that deletes nothing (bench/README.md). So it is asked early only when the inputs name
 * what to remove, or the engine has listed dangling images; otherwise once the plan shows
 * something to delete.
 */
const likelyDeletes = (settings: Settings): boolean => settings.refs.length > 0 || settings.prune === 'all'

/** Disk usage asked now, and given up on if the plan turns out to delete nothing. */
function askUsage(engine: Engine): { answer: Promise<DiskUsage | undefined>; abort: () => void } {
  const asking = new AbortController()
  const answer = engine.usage(asking.signal)
  answer.catch(() => undefined)
  return { answer, abort: () => asking.abort() }
}

function logPlan(state: EngineState, planned: Plan, log: Log): void {
  const { images, containers } = state
  const deletions = planned.steps.filter(step => step.deleted).length
  log.info(
    `${images.length} images, ${containers.length} containers; plan: ${planned.steps.length} requests, ` +
      `${deletions} images to delete, ${formatBytes(planned.bytes)} to free, ${planned.skipped.length} skipped`
  )
  for (const { ref, id } of planned.filteredOut) log.info(`${ref} (${shortId(id)}) is left out by the filters`)
}

/**
 * Reads the layers of the images into the state: from the engine's disk usage for the images that
 * share none, from one inspect per image for the rest (all of them without `usage`: inspect also
 * records the last tag).
 */
async function readLayers(engine: Engine, state: EngineState, usage: DiskUsage | undefined, log: Log): Promise<void> {
  const cache =
    engine.store === 'podman' ? undefined : (state.buildCache ?? (await engine.buildCache(true).catch(() => undefined)))
  const holding = (cache ?? []).filter(record => mayHoldLayer(record, engine.store === 'containerd'))
  // Disk usage counts only what images share with each other: where the build cache may hold an
  // image's layers too, every image is inspected, so that each layer is known by its chain ID.
  const unshared =
    usage && holding.length === 0 ? unsharedLayers(state.images, usage.shares) : new Map<string, Layer[]>()
  const details = await engine.details(state.images.filter(image => !unshared.has(image.id)))
  Object.assign(state, details, { layers: new Map([...unshared, ...details.layers]) })
  if (holding.length > 0) holdInState(state, await readCacheHolds(engine, holding, state))
  log.info(`Sized ${unshared.size} images from the engine's disk usage and inspected ${details.layers.size}`)
}

function summarize(
  endpoint: string,
  dryRun: boolean,
  state: EngineState,
  planned: Plan,
  execution: Execution,
  extra: {
    storageBefore?: number
    storageAfter?: number
    target?: TargetResult
    now: number
    jobScope: boolean
    lastUseSource?: string
    cache?: CacheResult
  }
): Result {
  const byId = new Map<string, Image>(state.images.map(image => [image.id, image]))
  const skipped = [...planned.skipped, ...execution.skipped]
  const rows: Row[] = [
    ...execution.done.map(done => ({
      ref: namedRef(done.step.cause) ?? done.untagged[0] ?? '<none>',
      id: done.step.imageId,
      created: byId.get(done.step.imageId)?.created,
      bytes: done.bytes,
      outcome: done.deletedImages.length > 0 ? ('deleted' as const) : ('untagged' as const),
      forTarget: done.step.cause.kind === 'storage-target'
    })),
    ...skipped.map(skip => ({
      ref: skip.ref,
      id: skip.id,
      created: byId.get(skip.id)?.created,
      bytes: 0,
      outcome: skip.reason
    }))
  ]
  return {
    endpoint,
    dryRun,
    bytes: execution.bytes,
    deleted: execution.done.flatMap(done => done.deletedImages),
    untagged: execution.done.flatMap(done => done.untagged),
    skipped,
    rows,
    interrupted: execution.interrupted,
    leftForOthers: planned.leftForOthers,
    ...extra
  }
}
