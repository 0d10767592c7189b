/**
 * Target (4)'s curve: planning and byte prediction alone, timed inside one process on the state a
 * real engine gives. bench/run.ts runs it once per N with the dry run's environment (INPUT_*, as
 * the runner sets them); it reads the engine once through src/engine/docker.ts, as the action does, and
 * then runs what a dry run runs on that state, again and again: plan() on the lists, the layers of
 * images that share none from disk usage (unsharedLayers), and price(). Prints one line of JSON.
 * run.ts bundles it with ncc first, as the action is bundled: src/ imports @actions/core, which
 * ships ESM only, and tsx would load src/ as CommonJS.
 */
import { connect } from '../src/engine/docker'
import { resolveEndpoint } from '../src/engine/endpoint'
import { getSettings } from '../src/action/inputs'
import { unsharedLayers } from '../src/engine/layers'
import { plan, price } from '../src/plan/plan'
import type { EngineState } from '../src/plan/model'

const REPS = Number(process.env.BENCH_PLAN_REPS || 41)

async function main(): Promise<void> {
  const settings = getSettings()
  const engine = await connect(await resolveEndpoint(settings.dockerHost), settings.timeout)
  const [images, containers, usage] = await Promise.all([engine.images(), engine.containers(), engine.usage()])
  if (!usage)
    throw new Error('the engine gave no disk usage: the planning curve needs an overlay2 engine without containers')
  // What is not priced from disk usage is inspected, once, outside the timing: that is engine work.
  const unshared = unsharedLayers(images, usage.shares)
  const inspected = images.filter(image => !unshared.has(image.id))
  const details = await engine.details(inspected)
  const ms: number[] = []
  const linearMs: number[] = []
  let deletions = 0
  for (let rep = 0; rep < REPS; rep++) {
    const state: EngineState = { images, containers, layers: new Map(), store: engine.store }
    const start = performance.now()
    const unpriced = plan(state, settings, Date.now())
    const planned = price(unpriced, new Map([...unsharedLayers(images, usage.shares), ...details.layers]))
    ms.push(performance.now() - start)
    deletions = planned.steps.filter(step => step.deleted).length
    // A control that is linear by construction (one filter and one Map over the same images): its
    // growth with N is the machine's own (caches, hash tables), which the planner's includes too.
    const control = performance.now()
    unsharedLayers(images, usage.shares)
    linearMs.push(performance.now() - control)
  }
  process.stdout.write(
    `${JSON.stringify({ images: images.length, deletions, inspected: inspected.length, ms, linearMs })}\n`
  )
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exitCode = 1
})
