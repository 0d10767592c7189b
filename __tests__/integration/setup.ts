import { publishBed } from '../../testbed/bed'
import { makeRoot, startEngine, startRegistry, type Engine } from '../../testbed/engine'

export default async function setup(): Promise<void> {
  const root = await makeRoot()
  let engine: Engine | undefined
  try {
    engine = await startEngine(root)
    const registry = await startRegistry(root)
    await publishBed({ root, engine, registry })
  } catch (err) {
    // Jest skips globalTeardown when globalSetup throws, so nothing else would stop the engine.
    await engine?.stop()
    throw new Error(`testbed setup failed (its logs stay in ${root}): ${err instanceof Error ? err.message : String(err)}`)
  }
}
