import { publishBed } from '../../testbed/bed'
import { flavourFromEnv, makeRoot, startEngine, startRegistry, type Engine } from '../../testbed/engine'

/** Starts the flavour RECLAIM_ENGINE names (docker20 when unset) and a loopback registry, both private. */
export default async function setup(): Promise<void> {
  const flavour = flavourFromEnv()
  const root = await makeRoot()
  let engine: Engine | undefined
  try {
    engine = await startEngine(root, flavour)
    const registry = await startRegistry(root)
    await publishBed({ root, engine, registry })
    process.stdout.write(
      `\ntestbed: ${flavour} engine ${engine.info.version} (API ${engine.info.apiVersion}, ${engine.info.imageStore} image store) at ${engine.host}\n`
    )
  } catch (err) {
    // Jest skips globalTeardown when globalSetup throws, so nothing else would stop the engine.
    await engine?.stop()
    throw new Error(
      `testbed setup (${flavour}) failed (its logs stay in ${root}): ${err instanceof Error ? err.message : String(err)}`,
      { cause: err }
    )
  }
}
