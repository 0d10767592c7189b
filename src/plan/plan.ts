import { passes, type Anchors, type Filters } from './filters'
import { parseNamed, parseRefSpec, patternMatches, referenceKey, type RefSpec } from './reference'
import { Ledger } from './ledger'
import { shortId } from '../common/ids'
import { Simulation, type Outcome } from './simulation'
import { lastUse, newestPerRepository, type AgeBasis } from './usage'
import {
  compareIds,
  type EngineState,
  type Image,
  type Layer,
  type Skip,
  type SkipReason,
  type Snapshot
} from './model'

/** The part of the settings the planner reads. */
export interface Selection {
  refs: RefSpec[]
  filters: Filters
  prune: 'none' | 'dangling' | 'all'
  force: boolean
  noPrune: boolean
  /** Milliseconds; images younger than this are kept. */
  keepDuration?: number
  keep: RefSpec[]
  /**
   * Job scope: the images present before the job. Only what appeared since,
   * or tags added since, may go; the images themselves always stay.
   */
  preexisting?: Snapshot
  /** Job scope with neither refs nor prune: also untag what the job tagged on older images. */
  untagAdded?: boolean
  /** In every repository, the N most recent images are kept whatever else is asked. */
  keepLast?: number
  /** What "recent" means for keep-duration and keep-last; the default is `created`. */
  ageBasis?: AgeBasis
  /** Least recently used images are removed until these hold. */
  targets?: Targets
}

/** Where image storage must end; needs the engine's layers, and `minFree` its free space. */
export interface Targets {
  /** Bytes of image storage on disk. */
  maxStorage?: number
  /** Bytes free on the filesystem under the engine's data root. */
  minFree?: number
}

/** The image storage and free space a plan starts from and leads to. */
export interface Storage {
  before: number
  after: number
  freeBefore?: number
  freeAfter?: number
  /** Whether every target holds after the plan; true when there is none. */
  met: boolean
}

/** One request to `DELETE /images/{target}?force=&noprune=1`, and what it will do. */
export interface Step {
  target: string
  force: boolean
  imageId: string
  /** What asked for it: the user's ref, `prune`, or `parent`. */
  cause: string
  /** The user named this ref itself, so a refusal is theirs to hear about. */
  named: boolean
  untagged: string[]
  deleted: boolean
  /** Untagged parents the engine deletes along with it (Podman, which ignores noprune). */
  pruned: string[]
  /** Chain IDs of the layers the step frees. */
  freed: string[]
  bytes: number
}

export interface Plan {
  steps: Step[]
  skipped: Skip[]
  /** Images a ref named that the filters left out. */
  filteredOut: { ref: string; id: string }[]
  bytes: number
  /** Meaningful only when the state held every image's layers. */
  storage: Storage
  /** The engine as the plan found it, to price what the engine reports deleted. */
  state: EngineState
}

/** The cause of steps a storage target asked for. */
export const RETENTION = 'storage target'

type Resolution = { id: string; byName?: string } | { reason: SkipReason; message: string }

/**
 * Decides what to remove and why, and what that frees, from the engine's
 * state alone: refs first, in the order given, then the prune.
 */
export function plan(state: EngineState, selection: Selection, now: number): Plan {
  return new Planner(state, selection, now).run()
}

/**
 * Whether the settings let the plan remove nothing but dangling images (untagged, without
 * children): then an engine with none has nothing to remove. Not with `before` or `since`, whose
 * images must be found on the engine, nor in job scope, which compares with its own record.
 */
export function prunesDanglingOnly(selection: Selection): boolean {
  const { refs, prune, targets, preexisting, untagAdded, filters } = selection
  return (
    refs.length === 0 &&
    prune === 'dangling' &&
    !targets &&
    !preexisting &&
    !untagAdded &&
    filters.before.length === 0 &&
    filters.since.length === 0
  )
}

/**
 * Prices, in place, the steps of a plan made before the layers were read, as the planner would
 * have: without a storage target no step depends on sizes, so the steps stand and each deletion
 * frees, in order, the layers its images were the last to hold. Saves planning a second time,
 * whose allocations at thousands of images made V8 grow its young generation (bench/README.md).
 */
export function price(planned: Plan, layers: Map<string, Layer[]>): Plan {
  planned.state = { ...planned.state, layers }
  const ledger = new Ledger(planned.state)
  const before = ledger.held()
  for (const step of planned.steps.filter(s => s.deleted)) {
    step.freed = [step.imageId, ...step.pruned].flatMap(id => ledger.release(id))
    step.bytes = ledger.bytes(step.freed)
  }
  planned.bytes = planned.steps.reduce((sum, step) => sum + step.bytes, 0)
  planned.storage = { ...planned.storage, before, after: before - planned.bytes }
  return planned
}

class Planner {
  private readonly sim: Simulation
  private readonly steps: Step[] = []
  private readonly skipped: Skip[] = []
  private readonly filteredOut: { ref: string; id: string }[] = []
  private readonly kept: Set<string>
  private readonly anchors: Anchors
  private readonly running: Set<string>
  private readonly byId: Map<string, Image>
  private readonly used: Map<string, number>
  private readonly keptLast: Map<string, string>
  private readonly storedBefore: number
  private freed = 0

  constructor(
    private readonly state: EngineState,
    private readonly selection: Selection,
    private readonly now: number
  ) {
    this.sim = new Simulation(state)
    this.byId = new Map(state.images.map(image => [image.id, image]))
    this.kept = new Set(
      selection.keep.flatMap(spec =>
        spec.kind === 'pattern' ? this.patternMatches(spec.pattern).map(m => m.id) : this.ids(spec)
      )
    )
    this.running = new Set(state.containers.filter(c => c.running).map(c => c.imageId))
    this.used = lastUse(state)
    this.keptLast = selection.keepLast
      ? newestPerRepository(state.images, selection.keepLast, id => this.age(id))
      : new Map()
    this.storedBefore = this.sim.storedBytes()
    this.anchors = {
      before: selection.filters.before.map(ref => this.anchorTime(ref, 'before')),
      since: selection.filters.since.map(ref => this.anchorTime(ref, 'since'))
    }
  }

  run(): Plan {
    for (const spec of this.selection.refs) this.removeSpec(spec)
    if (this.selection.untagAdded) this.untagAdded()
    if (this.selection.prune !== 'none') this.prune(this.selection.prune)
    if (this.selection.targets) this.evict(this.selection.targets)
    return {
      steps: this.steps,
      skipped: this.skipped,
      filteredOut: this.filteredOut,
      bytes: this.freed,
      storage: this.storage(),
      state: this.state
    }
  }

  private storage(): Storage {
    const { freeBytes } = this.state
    const free = freeBytes === undefined ? {} : { freeBefore: freeBytes, freeAfter: freeBytes + this.freed }
    const met = this.selection.targets === undefined || this.shortfall(this.selection.targets) <= 0
    return { before: this.storedBefore, after: this.storedBefore - this.freed, ...free, met }
  }

  /** Bytes still to free for every target to hold. */
  private shortfall(targets: Targets): number {
    const over = targets.maxStorage === undefined ? 0 : this.storedBefore - this.freed - targets.maxStorage
    const under = targets.minFree === undefined ? 0 : targets.minFree - ((this.state.freeBytes ?? 0) + this.freed)
    return Math.max(over, under)
  }

  /**
   * Removes the least recently used images until the targets hold; among
   * images last used at the same time, the one that frees more goes first.
   * Only images without children are removed (a parent's layers stay while
   * a child holds them), and one that would free nothing yet, because
   * another image shares its layers, waits while any other would free
   * something: no image goes for nothing when another would do.
   */
  private evict(targets: Targets): void {
    const pending = new Set(
      this.sim
        .images()
        .filter(image => this.evictable(image.id))
        .map(image => ({ id: image.id, used: this.used.get(image.id) ?? 0, bytes: this.sim.uniqueBytes(image.id) }))
        .sort((a, b) => a.used - b.used || b.bytes - a.bytes || compareIds(a.id, b.id))
        .map(candidate => candidate.id)
    )
    while (this.shortfall(targets) > 0) {
      const next = this.nextToEvict(pending)
      if (!next) return
      pending.delete(next)
      this.pruneOne(next, RETENTION)
    }
  }

  /** The first candidate in order that has no children and frees something, else the first without children. */
  private nextToEvict(pending: Set<string>): string | undefined {
    let firstReady: string | undefined
    for (const id of pending) {
      if (!this.sim.alive(id)) pending.delete(id)
      else if (!this.sim.hasChildren(id)) {
        if (this.sim.uniqueBytes(id) > 0) return id
        firstReady ??= id
      }
    }
    return firstReady
  }

  /** Whatever the order, an eviction never breaks a rule the user set or the engine keeps. */
  private evictable(id: string): boolean {
    const image = this.image(id)
    const intermediate = this.sim.unnamed(id) && this.sim.hasChildren(id)
    return (
      !intermediate &&
      !this.isPreexisting(id) &&
      this.sim.usedBy(id).length === 0 &&
      !this.protection(id) &&
      passes(image, this.selection.filters, this.anchors)
    )
  }

  /** The time keep-duration and keep-last judge an image by. */
  private age(id: string): number {
    return this.selection.ageBasis === 'last-used' ? (this.used.get(id) ?? 0) : this.image(id).created
  }

  private anchorTime(ref: string, key: string): number {
    const spec = parseRefSpecOrThrow(ref, key)
    const found = this.resolve(spec)
    if (!('id' in found))
      throw new Error(`Input "filters": ${key}=${ref} names no image on the engine (${found.message}).`)
    return this.image(found.id).created
  }

  private image(id: string): Image {
    return this.byId.get(id) as Image
  }

  /**
   * The images a spec names, for `keep`: every match, not only a unique one,
   * since an ambiguous keep must protect rather than protect nothing.
   */
  private ids(spec: RefSpec): string[] {
    const found = this.resolve(spec)
    if ('id' in found) return [found.id]
    const prefix = spec.kind === 'id' ? spec.prefix : spec.kind === 'name' ? spec.idPrefix : undefined
    return prefix
      ? this.sim
          .images()
          .filter(image => hexOf(image.id).startsWith(prefix))
          .map(image => image.id)
      : []
  }

  private patternMatches(pattern: RegExp): { id: string; ref: string }[] {
    return this.sim
      .images()
      .sort((a, b) => compareIds(a.id, b.id))
      .flatMap(image =>
        this.sim
          .refs(image.id)
          .filter(ref => matchesText(pattern, ref))
          .map(ref => ({ id: image.id, ref }))
      )
  }

  /** Finds an image the way the engine's GetImage does: by name first, then by ID prefix. */
  private resolve(spec: RefSpec): Resolution {
    if (spec.kind === 'name') {
      const byName = this.findByName(spec)
      if (byName) return byName
      if (!spec.idPrefix) return { reason: 'not-found', message: `No such image: ${spec.text}` }
      return this.findById(spec.idPrefix, spec.text)
    }
    if (spec.kind === 'id') return this.findById(spec.prefix, spec.text)
    return { reason: 'not-found', message: `No such image: ${spec.text}` }
  }

  private findByName(spec: Extract<RefSpec, { kind: 'name' }>): Resolution | undefined {
    const wanted = { ...spec.ref, tag: spec.ref.digest ? undefined : (spec.ref.tag ?? 'latest') }
    const key = referenceKey(wanted)
    for (const image of this.sim.images()) {
      const ref = this.sim.refs(image.id).find(r => {
        const parsed = parseNamed(r)
        return parsed !== undefined && referenceKey(parsed) === key
      })
      if (!ref) continue
      // The engine treats a name that is also a prefix of the image's own ID as an ID.
      return spec.idPrefix && hexOf(image.id).startsWith(spec.idPrefix)
        ? { id: image.id }
        : { id: image.id, byName: ref }
    }
    return undefined
  }

  private findById(prefix: string, text: string): Resolution {
    const matches = this.sim.images().filter(image => hexOf(image.id).startsWith(prefix))
    if (matches.length === 1) return { id: matches[0].id }
    if (matches.length === 0) return { reason: 'not-found', message: `No such image: ${text}` }
    return {
      reason: 'ambiguous',
      message: `${text} matches ${matches.length} images: ${matches.map(m => shortId(m.id)).join(', ')}`
    }
  }

  private removeSpec(spec: RefSpec): void {
    if (spec.kind === 'pattern') {
      for (const match of this.patternMatches(spec.pattern)) {
        if (this.isPreexisting(match.id, match.ref)) continue
        if (this.sim.refs(match.id).includes(match.ref)) this.selectAndRemove(match.ref, match.id, match.ref, false)
      }
      return
    }
    const found = this.resolve(spec)
    if ('id' in found) this.selectAndRemove(spec.text, found.id, found.byName, true)
    else this.skip(spec.text, '', found.reason, found.message, true)
  }

  private selectAndRemove(ref: string, id: string, byName: string | undefined, named: boolean): void {
    if (!passes(this.image(id), this.selection.filters, this.anchors)) {
      this.filteredOut.push({ ref, id })
      return
    }
    const older = this.olderThanJob(id, byName)
    if (older) return this.skip(ref, id, 'kept', older, named)
    const protectedBy = this.protection(id)
    if (protectedBy) return this.skip(ref, id, protectedBy.reason, protectedBy.message, named)
    const force = this.selection.force && this.sim.needsForce(id, byName)
    const stopped = this.sim.usedBy(id)[0]
    if (force && stopped && this.sim.rules.forceDeletesContainers) {
      const message = `image is being used by stopped container ${shortId(stopped.id)}, which this engine (Podman) would delete along with it if forced`
      return this.skip(ref, id, 'in-use-stopped', message, named)
    }
    const outcome = byName ? this.sim.removeByName(id, byName, force) : this.sim.removeById(id, force)
    if (!outcome.ok) return this.skip(ref, id, outcome.reason, outcome.message, named)
    this.record(ref, id, byName ?? id, force, outcome, this.pruneParentsToo(), named)
  }

  private isPreexisting(id: string, ref?: string): boolean {
    const refs = this.selection.preexisting?.get(id)
    return refs !== undefined && (ref === undefined || refs.has(ref))
  }

  /**
   * Why job scope forbids this removal, if it does: an image older than the
   * job may only lose a tag the job gave it, and only while it keeps another
   * reference (the engine deletes an image whose last tag goes).
   */
  private olderThanJob(id: string, byName: string | undefined): string | undefined {
    if (!this.isPreexisting(id)) return undefined
    if (!byName || this.isPreexisting(id, byName)) return 'was on the engine before the job started'
    const others = this.sim.refs(id).filter(ref => ref !== byName && !isSameRepoDigest(ref, byName))
    if (others.length > 0 || (this.sim.hasChildren(id) && this.sim.rules.childrenKeep)) return undefined
    return 'the job tagged an image that was on the engine before it, and untagging its last tag would delete it'
  }

  /** Every tag the job added to an image that was there before it. */
  private untagAdded(): void {
    for (const id of this.selection.preexisting?.keys() ?? []) {
      for (const ref of this.sim.refs(id).filter(r => !this.isPreexisting(id, r) && !r.includes('@'))) {
        this.selectAndRemove(ref, id, ref, false)
      }
    }
  }

  /** Our rules over the engine's: running containers, keep and keep-duration win over everything. */
  private protection(id: string): { reason: SkipReason; message: string } | undefined {
    if (this.running.has(id)) {
      const container = this.sim.usedBy(id).find(c => c.running)
      return { reason: 'in-use', message: `image is being used by running container ${shortId(container?.id ?? '')}` }
    }
    if (this.kept.has(id)) return { reason: 'kept', message: 'matches an input "keep" entry' }
    const repo = this.keptLast.get(id)
    if (repo)
      return {
        reason: 'kept',
        message: `one of the ${this.selection.keepLast} most recent images of ${repo} (input "keep-last")`
      }
    const { keepDuration } = this.selection
    if (keepDuration !== undefined && this.age(id) > this.now - keepDuration) {
      const verb = this.selection.ageBasis === 'last-used' ? 'used' : 'created'
      return { reason: 'too-recent', message: `${verb} within input "keep-duration"` }
    }
    return undefined
  }

  private record(
    cause: string,
    id: string,
    target: string,
    force: boolean,
    outcome: Outcome,
    pruneParents: boolean,
    named = false
  ): void {
    if (!outcome.ok) return this.skip(this.label(id), id, outcome.reason, outcome.message, false)
    const bytes = outcome.freed.reduce((sum, chainId) => sum + this.sim.layerSize(chainId), 0)
    this.freed += bytes
    const { untagged, deleted, pruned, freed } = outcome
    this.steps.push({ target, force, imageId: id, cause, named, untagged, deleted, pruned, freed, bytes })
    if (outcome.deleted && pruneParents) this.pruneParents(this.image(id).parentId)
  }

  /** Whether to send parent removals after a deletion: Podman prunes them itself, ignoring noprune. */
  private pruneParentsToo(): boolean {
    return !this.selection.noPrune && !this.sim.rules.prunesParents
  }

  /**
   * The engine's parent pruning, sent as requests of our own (the engine is
   * always asked with noprune=1) so that keep rules hold for parents too.
   */
  private pruneParents(id: string): void {
    if (!id || !this.sim.alive(id) || !this.sim.unnamed(id) || this.sim.hasChildren(id) || this.isPreexisting(id))
      return
    if (this.sim.usedBy(id).length > 0 || this.protection(id)) return
    this.record('parent', id, id, false, this.sim.removeById(id, false), true)
  }

  private prune(mode: 'dangling' | 'all'): void {
    const candidates = this.sim
      .images()
      .filter(image => !this.isPreexisting(image.id))
      .filter(image => (mode === 'dangling' ? this.isDanglingHead(image.id) : this.isPrunable(image.id)))
      .filter(image => passes(image, this.selection.filters, this.anchors))
      .map(image => ({ id: image.id, depth: this.sim.depth(image.id) }))
      .sort((a, b) => b.depth - a.depth || compareIds(a.id, b.id))
    for (const { id } of candidates) if (this.sim.alive(id)) this.pruneOne(id)
  }

  private isDanglingHead(id: string): boolean {
    return this.sim.tags(id).length === 0 && !this.sim.hasChildren(id)
  }

  /** What `docker image prune -a` considers: everything but untagged intermediates. */
  private isPrunable(id: string): boolean {
    return !this.sim.unnamed(id) || !this.sim.hasChildren(id)
  }

  /**
   * Prune never forces, like the engine's: images of containers stay. A
   * stopped container's image is left whole here, where the engine's own
   * prune would untag every tag but the last before refusing.
   */
  private pruneOne(id: string, cause = 'prune'): void {
    const protectedBy = this.protection(id)
    if (protectedBy) return this.skip(this.label(id), id, protectedBy.reason, protectedBy.message, false)
    const stopped = this.sim.usedBy(id)[0]
    if (stopped) {
      return this.skip(
        this.label(id),
        id,
        'in-use-stopped',
        `image is being used by stopped container ${shortId(stopped.id)}`,
        false
      )
    }
    if (this.sim.hasChildren(id) && !this.sim.rules.childrenBlock) {
      // Stores that would delete it take a name and free nothing: the images built on it hold its layers.
      return this.skip(this.label(id), id, 'has-children', 'other images that stay are built on it', false)
    }
    const pruneParents = this.pruneParentsToo()
    if (this.sim.unnamed(id) || this.sim.singleReference(id)) {
      return this.record(cause, id, id, false, this.sim.removeById(id, false), pruneParents)
    }
    for (const ref of this.sim.names(id)) {
      const outcome = this.sim.removeByName(id, ref, false)
      this.record(cause, id, ref, false, outcome, pruneParents)
      if (!outcome.ok || outcome.deleted) return
    }
  }

  private label(id: string): string {
    return this.sim.tags(id)[0] ?? shortId(id)
  }

  private skip(ref: string, id: string, reason: SkipReason, message: string, named: boolean): void {
    this.skipped.push({ ref, id, reason, message, named })
  }
}

/** A digest reference the engine drops along with the last tag of its repository. */
function isSameRepoDigest(ref: string, tag: string): boolean {
  return ref.includes('@') && parseNamed(ref)?.name === parseNamed(tag)?.name
}

const hexOf = (id: string): string => id.replace(/^sha256:/, '')

function matchesText(pattern: RegExp, text: string): boolean {
  const ref = parseNamed(text)
  return ref !== undefined && patternMatches(pattern, ref)
}

function parseRefSpecOrThrow(ref: string, key: string): RefSpec {
  const spec = parseRefSpec(ref)
  if (!spec || spec.kind === 'pattern')
    throw new Error(`Input "filters": ${key}=${ref} is not an image ID or name:tag.`)
  return spec
}
