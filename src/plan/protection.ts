import { InputError } from '../common/errors'
import { shortId } from '../common/ids'
import { passes, type Anchors, type Filters } from './filters'
import { parseNamed, parseRefSpec, type RefSpec } from './reference'
import { lastUse, newestPerRepository, type AgeBasis } from './usage'
import type { EngineState, Image, Refusal, Snapshot } from './model'
import type { Resolver } from './resolver'
import type { Simulation } from './simulation'
import { describeJob, heldItems, heldKey, type JobRecord } from './jobs'

/** The settings that decide which images may go at all, whatever asked for them. */
export interface ProtectionSettings {
  filters: Filters
  /** Milliseconds; images younger than this are kept. */
  keepDuration?: number
  keep: RefSpec[]
  /**
   * Job scope: the images present before the job. Only what appeared since,
   * or tags added since, may go; the images themselves always stay.
   */
  preexisting?: Snapshot
  /** In every repository, the N most recent images are kept whatever else is asked. */
  keepLast?: number
  /** What "recent" means for keep-duration and keep-last; the default is `created`. */
  ageBasis?: AgeBasis
  /**
   * Job scope on a shared engine: the other jobs still running. What appeared while one of them
   * ran may be theirs, and stays for the last job to finish (jobs.ts).
   */
  otherJobs?: JobRecord[]
}

/**
 * Which images the settings let go, whatever asked for them: the filters select; running
 * containers, keep, keep-last and keep-duration protect; job scope leaves what was there before.
 * Keep rules and filter anchors are read from the engine as the plan found it, so that no removal
 * the plan makes can change what they protect.
 */
export class Protection {
  private readonly images: Map<string, Image>
  private readonly used: Map<string, number>
  /** The time keep-duration and keep-last judge an image by. */
  private readonly age: (id: string) => number
  private readonly kept: Set<string>
  private readonly keptLast: Map<string, string>
  private readonly anchors: Anchors
  /** Additions another running job may have made, by heldKey, with that job. */
  readonly held: Map<string, JobRecord>

  /** `resolver` must see the engine as the plan found it: no removal played yet. */
  constructor(
    state: EngineState,
    private readonly sim: Simulation,
    resolver: Resolver,
    private readonly settings: ProtectionSettings,
    private readonly now: number
  ) {
    const images = new Map(state.images.map(image => [image.id, image]))
    const used = lastUse(state)
    const { keep, keepLast, ageBasis, filters } = settings
    const age = (id: string): number =>
      ageBasis === 'last-used' ? (used.get(id) ?? 0) : (images.get(id) as Image).created
    this.images = images
    this.used = used
    this.age = age
    this.kept = new Set(keep.flatMap(spec => resolver.every(spec)))
    this.keptLast = keepLast ? newestPerRepository(state.images, keepLast, age) : new Map()
    this.anchors = anchorsOf(filters, resolver, images)
    const { preexisting, otherJobs } = settings
    this.held = preexisting && otherJobs ? heldItems(state, preexisting, otherJobs) : new Map()
  }

  /** Whether the filters select the image. */
  selects(id: string): boolean {
    return passes(this.image(id), this.settings.filters, this.anchors)
  }

  /** Our rules over the engine's: running containers, keep and keep-duration win over everything. */
  protects(id: string): Refusal | undefined {
    const container = this.sim.usedBy(id).find(c => c.running)
    if (container)
      return { reason: 'in-use', message: `image is being used by running container ${shortId(container.id)}` }
    const job = this.held.get(heldKey(id))
    if (job) return otherJob(job)
    if (this.kept.has(id)) return { reason: 'kept', message: 'matches an input "keep" entry' }
    const repo = this.keptLast.get(id)
    if (repo)
      return {
        reason: 'kept',
        message: `one of the ${this.settings.keepLast} most recent images of ${repo} (input "keep-last")`
      }
    const { keepDuration, ageBasis } = this.settings
    if (keepDuration !== undefined && this.age(id) > this.now - keepDuration) {
      const verb = ageBasis === 'last-used' ? 'used' : 'created'
      return { reason: 'too-recent', message: `${verb} within input "keep-duration"` }
    }
    return undefined
  }

  /** Job scope: whether the image, or this reference of it, was on the engine before the job. */
  preexisting(id: string, ref?: string): boolean {
    const refs = this.settings.preexisting?.get(id)
    return refs !== undefined && (ref === undefined || refs.has(ref))
  }

  /**
   * Why job scope forbids this removal, if it does: an image older than the
   * job may only lose a tag the job gave it, and only while it keeps another
   * reference (the engine deletes an image whose last tag goes).
   */
  olderThanJob(id: string, byName: string | undefined): Refusal | undefined {
    if (!this.preexisting(id)) return undefined
    if (!byName || this.preexisting(id, byName)) return kept('was on the engine before the job started')
    const job = this.held.get(heldKey(id, byName))
    if (job) return otherJob(job)
    const others = this.sim.refs(id).filter(ref => ref !== byName && !isSameRepoDigest(ref, byName))
    if (others.length > 0 || (this.sim.hasChildren(id) && this.sim.rules.childrenKeep)) return undefined
    return kept('the job tagged an image that was on the engine before it, and untagging its last tag would delete it')
  }

  /** When the image was last used (usage.ts), whatever keep-duration and keep-last go by. */
  lastUsed(id: string): number {
    return this.used.get(id) ?? 0
  }

  private image(id: string): Image {
    return this.images.get(id) as Image
  }
}

/** The creation times of the images the filters `before` and `since` name, which must be on the engine. */
function anchorsOf(filters: Filters, resolver: Resolver, images: Map<string, Image>): Anchors {
  const createdOf = (key: 'before' | 'since') => (ref: string) => {
    const spec = parseRefSpec(ref)
    if (!spec || spec.kind === 'pattern')
      throw new InputError('filters', `has ${key}=${ref}, which is not an image ID or name:tag.`)
    const found = resolver.find(spec)
    if (!('id' in found))
      throw new InputError('filters', `has ${key}=${ref}, which names no image on the engine (${found.message}).`)
    return (images.get(found.id) as Image).created
  }
  return { before: filters.before.map(createdOf('before')), since: filters.since.map(createdOf('since')) }
}

const kept = (message: string): Refusal => ({ reason: 'kept', message })

const otherJob = (job: JobRecord): Refusal => ({
  reason: 'other-job',
  message: `appeared since ${describeJob(job.job)} began, which is still running and may have made it: the last job on this engine to finish removes it`
})

/** A digest reference the engine drops along with the last tag of its repository. */
function isSameRepoDigest(ref: string, tag: string): boolean {
  return ref.includes('@') && parseNamed(ref)?.name === parseNamed(tag)?.name
}
