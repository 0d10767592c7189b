import type { EngineState, Snapshot } from './model'

/** Who a job is, in the runner's own words: enough for a person to find it. */
export interface JobIdentity {
  /** `owner/name`. */
  repository: string
  workflow: string
  runId: string
  runAttempt: string
  /** The job's ID in the workflow (`GITHUB_JOB`). */
  job: string
  runner: string
}

/**
 * What a job in `scope: job` leaves on the engine while it runs, so that the other jobs on the
 * same engine can see it. Times are the engine's clock, never a runner's.
 */
export interface JobRecord {
  /** The record's own name on the engine. */
  name: string
  job: JobIdentity
  /** When its main step began, in milliseconds. */
  startedAt: number
  /**
   * Set once its post step has run while other jobs were still running: the images and tags it
   * left in place for them, which the last job to finish removes.
   */
  left?: Leftovers
}

/** Images left whole (their ID), and tags left on images that were there before (ID to tags). */
export interface Leftovers {
  images: string[]
  tags: Record<string, string[]>
}

/** How the jobs on one engine stand when one of them ends. */
export interface Overlap {
  /** Other jobs still running, earliest first. */
  running: JobRecord[]
  /** Jobs that ended while others ran, whose leftovers the last job removes. */
  ended: JobRecord[]
  /** Records of jobs that died without their post step: they protect nothing any more. */
  expired: JobRecord[]
}

/**
 * Sorts the records on the engine from the point of view of the job named `own`. A running job's
 * record older than `expiryMs` by the engine's clock has expired: the job died without its post
 * step. An ended job's record never expires: what it left waits for the last job, however late.
 */
export function overlap(own: string, records: JobRecord[], now: number, expiryMs: number): Overlap {
  const result: Overlap = { running: [], ended: [], expired: [] }
  for (const record of records) {
    if (record.name === own) continue
    if (record.left) result.ended.push(record)
    else if (now - record.startedAt > expiryMs) result.expired.push(record)
    else result.running.push(record)
  }
  result.running.sort((a, b) => a.startedAt - b.startedAt || (a.name < b.name ? -1 : 1))
  return result
}

/**
 * The running job that may have made an image or tag which appeared at `appearedAt` (the engine's
 * clock): the earliest of those already running by then. Without a time, any of them may have.
 * Records keep whole seconds and round down, so a job whose record shows the same second as the
 * image counts as already running: in doubt, the image is left to it.
 */
export function heldBy(appearedAt: number | undefined, running: JobRecord[]): JobRecord | undefined {
  return running.find(record => appearedAt === undefined || appearedAt >= record.startedAt)
}

/** The key of a whole image in `held`, and of one tag on an image that was there before. */
export const heldKey = (id: string, tag?: string): string => (tag === undefined ? id : `${id} ${tag}`)

/**
 * The images, and tags on images that were there before, that appeared since this job began while
 * another job was running, each with that job. A tagged image or a tag appeared when the image was
 * last tagged; an untagged image, when it was made. Where the engine records no such time (or
 * the state has no details), any running job may have made it: a pulled or loaded image keeps the
 * creation time of its build, long before it came to this engine.
 */
export function heldItems(state: EngineState, preexisting: Snapshot, running: JobRecord[]): Map<string, JobRecord> {
  const held = new Map<string, JobRecord>()
  if (running.length === 0) return held
  for (const image of state.images) {
    const tagged = state.lastTagged?.get(image.id)
    const before = preexisting.get(image.id)
    if (!before) {
      const untagged = image.tags.length === 0 && image.digests.length === 0
      const made = state.createdAt ? (state.createdAt.get(image.id) ?? image.created) : undefined
      const job = heldBy(untagged ? made : tagged, running)
      if (job) held.set(heldKey(image.id), job)
      continue
    }
    for (const tag of [...image.tags, ...image.digests].filter(ref => !before.has(ref))) {
      const job = heldBy(tagged, running)
      if (job) held.set(heldKey(image.id, tag), job)
    }
  }
  return held
}

/** What a job that ends while others run leaves them, from the keys of `heldItems`. */
export function leftoversOf(keys: Iterable<string>): Leftovers {
  const left: Leftovers = { images: [], tags: {} }
  for (const key of keys) {
    const space = key.indexOf(' ')
    if (space < 0) left.images.push(key)
    else (left.tags[key.slice(0, space)] ??= []).push(key.slice(space + 1))
  }
  return left
}

/**
 * The last job's view of what was there before: its own snapshot without what the jobs that ended
 * before it left in place, so that it removes those too.
 */
export function withoutLeftovers(preexisting: Snapshot, ended: JobRecord[]): Snapshot {
  const result: Snapshot = new Map([...preexisting].map(([id, refs]) => [id, new Set(refs)]))
  for (const { left } of ended) {
    if (!left) continue
    for (const id of left.images) result.delete(id)
    for (const [id, tags] of Object.entries(left.tags)) {
      const refs = result.get(id)
      for (const tag of tags) refs?.delete(tag)
    }
  }
  return result
}

/** A job as a person reads it in a log line or the summary. */
export function describeJob(job: JobIdentity): string {
  const attempt = job.runAttempt && job.runAttempt !== '1' ? ` (attempt ${job.runAttempt})` : ''
  const workflow = job.workflow ? `workflow "${job.workflow}", ` : ''
  return `job "${job.job}" of ${workflow}run ${job.runId}${attempt} of ${job.repository}, on runner "${job.runner}"`
}
