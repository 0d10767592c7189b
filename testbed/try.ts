import { removeRoot } from './bed'
import { makeRoot, startEngine, type Engine } from './engine'
import { runBundle, type ActionRun } from './runner'
import { Scene } from './scene'

const YEARS_AGO = '2019-03-01T00:00:00Z'

/** Images of every kind the action treats differently, so a first run shows each outcome. */
async function sampleImages(scene: Scene): Promise<void> {
  await scene.dangling('webapp')
  await scene.build(['webapp:pr-17', 'webapp:pr-18'], { bytes: 3_000_000 })
  await scene.build('cache/base:1', { bytes: 5_000_000 })
  await scene.build('cache/tool:1', { from: 'cache/base:1', bytes: 2_000_000, labels: { stage: 'tool' } })
  await scene.old('legacy/report:2019', YEARS_AGO, 4_000_000)
  await scene.build('service:live', { from: 'testbed/busybox:static', bytes: 1_000_000 })
  await scene.runContainer('service:live', { running: true })
}

function inputsFrom(args: string[]): Record<string, string> {
  return Object.fromEntries(
    args.map(arg => {
      const eq = arg.indexOf('=')
      if (eq < 1) throw new Error(`arguments are inputs as name=value (for example prune=all dry-run=true), not "${arg}"`)
      return [arg.slice(0, eq), arg.slice(eq + 1)]
    })
  )
}

function show(run: ActionRun): void {
  process.stdout.write(`${run.stdout}${run.stderr}`)
  process.stdout.write('\n--- outputs ---\n')
  for (const [name, value] of Object.entries(run.outputs)) process.stdout.write(`${name}: ${value}\n`)
  process.stdout.write('\n--- job summary (GITHUB_STEP_SUMMARY) ---\n')
  process.stdout.write(`${run.summary}\n`)
}

async function main(): Promise<void> {
  const inputs = inputsFrom(process.argv.slice(2))
  const given = inputs['docker-host'] || process.env.DOCKER_HOST
  if (given) {
    show(await runBundle(inputs, { host: given }))
    return
  }
  const root = await makeRoot()
  let engine: Engine | undefined
  try {
    engine = await startEngine(root)
    process.stdout.write(`No engine given: started a private one at ${engine.host} with sample images.\n\n`)
    await sampleImages(new Scene(engine))
    show(await runBundle(inputs, { host: engine.host }))
  } finally {
    await engine?.stop()
    if (engine) await removeRoot(root)
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
})
