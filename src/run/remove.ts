import { EngineError, type Engine, type RemovedItem } from '../engine/engine'
import { Ledger } from '../plan/ledger'
import { shortId } from '../common/ids'
import { formatBytes } from '../common/units'
import type { Log } from './log'
import { skipOf, type Cause, type Plan, type Step } from '../plan/plan'
import { prerequisites, runAfter } from './order'
import type { Image, Skip, SkipReason } from '../plan/model'

/** What happened to one step, as the engine answered it (or, in a dry run, as planned). */
export interface Done {
  step: Step
  untagged: string[]
  deletedImages: string[]
  bytes: number
}

export interface Execution {
  done: Done[]
  skipped: Skip[]
  bytes: number
  /** Why the run stopped before the end of the plan, when the engine went away. */
  interrupted?: string
}

const PROGRESS_EVERY = 25
/** DELETEs in flight: the engine's per-image cost is mostly fsyncs, which overlap (bench/README.md). */
const PARALLEL_REMOVALS = 6
const ATTEMPTS = 4
const FIRST_BACKOFF_MS = 250

/**
 * Sends the plan's requests, up to PARALLEL_REMOVALS at once, each after the steps it depends on
 * (order.ts). Results are reported in the plan's order. A refused request is reported and the
 * rest still run; an engine that stays unreachable ends the run, and what was done until then is
 * still returned.
 */
export async function execute(
  engine: Engine,
  plan: Plan,
  options: { dryRun: boolean; timeoutMs: number },
  images: readonly Image[],
  log: Log
): Promise<Execution> {
  const report = new Reporter(plan, options.dryRun, log)
  if (options.dryRun) {
    plan.steps.forEach((step, index) => report.settle(index, planned(step)))
    return report.execution()
  }
  const ledger = new Ledger(plan.state)
  // Where the build cache holds image layers on overlay2 the plan only guesses which (cache-holds.ts),
  // while the engine's answer names every layer that left: then the answer is counted.
  const byAnswer = engine.store === 'graphdriver' && plan.state.cacheHeld !== undefined
  let gone: Error | undefined
  const outcomes = await runAfter(
    plan.steps,
    prerequisites(plan.steps, images),
    PARALLEL_REMOVALS,
    async (step, index) => {
      let outcome: Done | Skip | undefined
      try {
        outcome = gone ? undefined : await send(engine, ledger, step, options.timeoutMs, byAnswer)
      } catch (error) {
        gone ??= error as Error
      }
      report.settle(index, outcome)
      return outcome
    }
  )
  if (!gone) return report.execution()
  const sent = outcomes.filter(Boolean).length
  const interrupted = `The engine at ${engine.endpoint} stopped answering after ${sent} of ${plan.steps.length} requests (${gone.message}); run the step again once it is back.`
  return { ...report.execution(), interrupted }
}

/**
 * Takes outcomes as they come and logs them in the plan's order, as soon as every earlier one is
 * in, with a progress line every PROGRESS_EVERY deletions. A step never sent settles as undefined.
 */
class Reporter {
  private readonly done: Done[] = []
  private readonly skipped: Skip[] = []
  private readonly settled = new Map<number, Done | Skip | undefined>()
  private readonly deletions: number
  private next = 0
  private deletedSoFar = 0

  constructor(
    plan: Plan,
    private readonly dryRun: boolean,
    private readonly log: Log
  ) {
    this.deletions = plan.steps.filter(step => step.deleted).length
  }

  settle(index: number, outcome: Done | Skip | undefined): void {
    this.settled.set(index, outcome)
    while (this.settled.has(this.next)) {
      const ready = this.settled.get(this.next)
      this.settled.delete(this.next++)
      if (ready) this.add(ready)
    }
  }

  private add(result: Done | Skip): void {
    if ('reason' in result) return this.skip(result)
    this.done.push(result)
    logStep(result, this.dryRun, this.log)
    this.deletedSoFar += result.deletedImages.length
    if (
      this.deletions >= PROGRESS_EVERY &&
      result.deletedImages.length > 0 &&
      this.deletedSoFar % PROGRESS_EVERY === 0
    ) {
      this.log.info(`${this.dryRun ? 'would delete' : 'deleted'} ${this.deletedSoFar}/${this.deletions}`)
    }
  }

  private skip(result: Skip): void {
    this.skipped.push(result)
    this.log.warning(`${result.ref}: ${result.message}`)
  }

  execution(): Execution {
    return { done: this.done, skipped: this.skipped, bytes: total(this.done) }
  }
}

const total = (done: Done[]): number => done.reduce((sum, d) => sum + d.bytes, 0)

function planned(step: Step): Done {
  return {
    step,
    untagged: step.untagged,
    deletedImages: step.deleted ? [step.imageId, ...step.pruned] : [],
    bytes: step.bytes
  }
}

/** One request; throws only when the engine is gone, so the caller stops. */
async function send(
  engine: Engine,
  ledger: Ledger,
  step: Step,
  timeoutMs: number,
  byAnswer: boolean
): Promise<Done | Skip> {
  let items: RemovedItem[]
  try {
    items = await withRetries(() => engine.remove(step.target, step.force), Date.now() + timeoutMs)
  } catch (error) {
    if (error instanceof EngineError && error.unreachable) throw error
    // Another process removed the image first: its bytes are not this run's to report, but the
    // ledger must still release it, or layers it shared with later steps would never count as freed.
    if (error instanceof EngineError && error.statusCode === 404) ledger.release(step.imageId)
    return refused(step, error)
  }
  // The bytes are those of the layers that no image or container holds once these images are
  // gone: some images' layers were never inspected, so the layers an answer names are used only
  // where the plan inspected every image because the build cache holds some of their layers.
  const deletedImages = await confirmed(
    engine,
    step,
    valuesOf(items, 'deleted', id => ledger.isImage(id))
  )
  const released = deletedImages.flatMap(id => ledger.release(id))
  const freed = byAnswer ? valuesOf(items, 'deleted', id => !ledger.isImage(id)) : released
  return { step, untagged: valuesOf(items, 'untagged'), deletedImages, bytes: ledger.bytes(freed) }
}

/**
 * One key's values in the engine's answer. The result is kept for every removed image until the
 * report, so it is made by `map`, which allocates an array of exact length; the arrays `filter` and
 * `flatMap` return keep spare room.
 */
function valuesOf(
  items: RemovedItem[],
  key: keyof RemovedItem,
  wanted: (value: string) => boolean = () => true
): string[] {
  return items.filter(item => item[key] !== undefined && wanted(item[key])).map(item => item[key] as string)
}

/**
 * Where the answer and the plan disagree about the step's own image, the engine is asked
 * whether it is still there: Podman deletes an image others are built on and answers [] or
 * Untagged only, and the containerd store answers Deleted for one it keeps, untagged.
 */
async function confirmed(engine: Engine, step: Step, answered: string[]): Promise<string[]> {
  const said = answered.includes(step.imageId)
  if (said === step.deleted) return answered
  const there = await engine.exists(step.imageId).catch(() => !said)
  const others = answered.filter(id => id !== step.imageId)
  return there ? others : [step.imageId, ...others]
}

/** Transient failures (a server error, a dropped connection) are asked again, with backoff, within the deadline. */
async function withRetries<T>(request: () => Promise<T>, deadline: number): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request()
    } catch (error) {
      const wait = FIRST_BACKOFF_MS * 2 ** (attempt - 1)
      const retry =
        error instanceof EngineError && error.transient && attempt < ATTEMPTS && Date.now() + wait < deadline
      if (!retry) throw error
      await new Promise(resolve => setTimeout(resolve, wait))
    }
  }
}

/** A refused step, under its ref, or, where the planner chose the image, under the name it was to lose. */
function refused(step: Step, error: unknown): Skip {
  const message = error instanceof Error ? error.message : String(error)
  const status = error instanceof EngineError ? error.statusCode : undefined
  const label = step.untagged[0] ?? shortId(step.imageId)
  // Between the listing and this request someone else removed it: the goal is met, nobody failed.
  if (status === 404) {
    const gone = { reason: 'not-found' as const, message: `already removed by another process (${message})` }
    return { ...skipOf(step.cause, step.imageId, label, gone), named: false }
  }
  return skipOf(step.cause, step.imageId, label, { reason: reasonOf(status, message), message })
}

/** Maps the engine's refusal texts (moby image_delete.go, Podman's libimage) onto our reasons. */
function reasonOf(status: number | undefined, message: string): SkipReason {
  if (status === 404) return 'not-found'
  if (message.includes('by ID with more than one tag')) return 'multiple-references'
  if (status !== 409) return 'error'
  if (message.includes('running container')) return 'in-use'
  // Podman does not say whether the container is running: an image a running container used when
  // the plan was made is never sent, so the container is taken to be stopped.
  const stopped = ['stopped container', 'is using its referenced image', 'image is in use by a container']
  if (stopped.some(words => message.includes(words))) return 'in-use-stopped'
  if (message.includes('dependent child images')) return 'has-children'
  if (message.includes('multiple repositories')) return 'multiple-references'
  return 'error'
}

function logStep(done: Done, dryRun: boolean, log: Log): void {
  const [untag, remove] = dryRun ? ['Would untag', 'Would delete'] : ['Untagged', 'Deleted']
  for (const ref of done.untagged) log.info(`${untag}: ${ref}`)
  const why = causeWords(done.step.cause)
  for (const id of done.deletedImages) log.info(`${remove}: ${id} (${why}; ${formatBytes(done.bytes)} freed)`)
}

/** What asked for a deletion, in its log line. */
function causeWords(cause: Cause): string {
  switch (cause.kind) {
    case 'ref':
      return `for ${cause.ref}`
    case 'storage-target':
      return 'for storage target'
    case 'prune':
    case 'parent':
      return `by ${cause.kind}`
  }
}
