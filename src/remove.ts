import { EngineError, type Engine, type RemovedItem } from './engine'
import { shortId } from './simulation'
import { formatBytes } from './units'
import type { Log } from './log'
import type { Plan, Step } from './plan'
import type { Skip, SkipReason } from './model'

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
const ATTEMPTS = 4
const FIRST_BACKOFF_MS = 250

/**
 * Sends the plan's requests in order. A refused request is reported and the
 * rest still run; an engine that stays unreachable ends the run, and what
 * was done until then is still returned.
 */
export async function execute(engine: Engine, plan: Plan, options: { dryRun: boolean; timeoutMs: number }, log: Log): Promise<Execution> {
  const { dryRun } = options
  const done: Done[] = []
  const skipped: Skip[] = []
  const deletions = plan.steps.filter(step => step.deleted).length
  let deletedSoFar = 0
  for (const [index, step] of plan.steps.entries()) {
    let result: Done | Skip
    try {
      result = dryRun ? planned(step) : await send(engine, plan, step, options.timeoutMs)
    } catch (error) {
      const interrupted = `The engine at ${engine.endpoint} stopped answering after ${index} of ${plan.steps.length} requests (${(error as Error).message}); run the step again once it is back.`
      return { done, skipped, bytes: total(done), interrupted }
    }
    if ('reason' in result) {
      skipped.push(result)
      log.warning(`${step.cause === 'parent' ? shortId(step.imageId) : step.cause}: ${result.message}`)
      continue
    }
    done.push(result)
    logStep(result, dryRun, log)
    deletedSoFar += result.deletedImages.length
    if (deletions >= PROGRESS_EVERY && result.deletedImages.length > 0 && deletedSoFar % PROGRESS_EVERY === 0) {
      log.info(`${dryRun ? 'would delete' : 'deleted'} ${deletedSoFar}/${deletions}`)
    }
  }
  return { done, skipped, bytes: total(done) }
}

const total = (done: Done[]): number => done.reduce((sum, d) => sum + d.bytes, 0)

function planned(step: Step): Done {
  return { step, untagged: step.untagged, deletedImages: step.deleted ? [step.imageId] : [], bytes: step.bytes }
}

/** One request; throws only when the engine is gone, so the caller stops. */
async function send(engine: Engine, plan: Plan, step: Step, timeoutMs: number): Promise<Done | Skip> {
  let items: RemovedItem[]
  try {
    items = await withRetries(() => engine.remove(step.target, step.force), Date.now() + timeoutMs)
  } catch (error) {
    if (error instanceof EngineError && error.unreachable) throw error
    return refused(step, error)
  }
  const deleted = items.flatMap(item => (item.deleted ? [item.deleted] : []))
  // The engine lists the image and the layers it removed; only layers hold bytes.
  const layers = deleted.filter(id => plan.layerSizes.has(id))
  return {
    step,
    untagged: items.flatMap(item => (item.untagged ? [item.untagged] : [])),
    deletedImages: deleted.filter(id => !plan.layerSizes.has(id)),
    bytes: layers.reduce((sum, id) => sum + (plan.layerSizes.get(id) ?? 0), 0)
  }
}

/** Transient failures (a server error, a dropped connection) are asked again, with backoff, within the deadline. */
async function withRetries<T>(request: () => Promise<T>, deadline: number): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request()
    } catch (error) {
      const wait = FIRST_BACKOFF_MS * 2 ** (attempt - 1)
      const retry = error instanceof EngineError && error.transient && attempt < ATTEMPTS && Date.now() + wait < deadline
      if (!retry) throw error
      await new Promise(resolve => setTimeout(resolve, wait))
    }
  }
}

function refused(step: Step, error: unknown): Skip {
  const message = error instanceof Error ? error.message : String(error)
  const status = error instanceof EngineError ? error.statusCode : undefined
  // Between the listing and this request someone else removed it: the goal is met, nobody failed.
  if (status === 404) return { ref: step.cause, id: step.imageId, reason: 'not-found', message: `already removed by another process (${message})`, named: false }
  return { ref: step.cause, id: step.imageId, reason: reasonOf(status, message), message, named: step.named }
}

/** Maps the engine's refusal texts (moby image_delete.go) onto our reasons. */
function reasonOf(status: number | undefined, message: string): SkipReason {
  if (status === 404) return 'not-found'
  if (status !== 409) return 'error'
  if (message.includes('running container')) return 'in-use'
  if (message.includes('stopped container') || message.includes('is using its referenced image')) return 'in-use-stopped'
  if (message.includes('dependent child images')) return 'has-children'
  if (message.includes('multiple repositories')) return 'multiple-references'
  return 'error'
}

function logStep(done: Done, dryRun: boolean, log: Log): void {
  const [untag, remove] = dryRun ? ['Would untag', 'Would delete'] : ['Untagged', 'Deleted']
  for (const ref of done.untagged) log.info(`${untag}: ${ref}`)
  const cause = done.step.cause === 'prune' || done.step.cause === 'parent' ? `by ${done.step.cause}` : `for ${done.step.cause}`
  for (const id of done.deletedImages) log.info(`${remove}: ${id} (${cause}; ${formatBytes(done.bytes)} freed)`)
}
