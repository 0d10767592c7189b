import { removeRoot } from './bed'
import { makeRoot, startEngine, type Engine } from './engine'
import { runBundle, type ActionRun } from './runner'
import { sampleImages } from './samples'
import { Scene } from './scene'

function inputsFrom(args: string[]): Record<string, string> {
  return Object.fromEntries(
    args.map(arg => {
      const eq = arg.indexOf('=')
      if (eq < 1)
        throw new Error(`arguments are inputs as name=value (for example prune=all dry-run=true), not "${arg}"`)
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
