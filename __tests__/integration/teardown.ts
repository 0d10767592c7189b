import { removeRoot, takeHandles } from '../../testbed/bed'
import { stopStrayEngines } from '../../testbed/engine'

export default async function teardown(): Promise<void> {
  const handles = takeHandles()
  if (handles === undefined) return
  const problems: string[] = []
  // Engines that tests started themselves and did not stop (a timed-out test never reaches its finally).
  const strays = await stopStrayEngines(handles.root).catch((err: unknown) => {
    problems.push(`stopping engines the tests left running: ${String(err)}`)
    return []
  })
  if (strays.length > 0)
    process.stdout.write(`\ntestbed teardown: stopped engines a test left running: ${strays.join('; ')}\n`)
  const stopped = await Promise.allSettled([handles.engine.stop(), handles.registry.stop()])
  for (const s of stopped) if (s.status === 'rejected') problems.push(String(s.reason))
  // The root is only safe to remove once the engine has exited and released its mounts.
  if (stopped[0].status === 'fulfilled') {
    await removeRoot(handles.root).catch((err: unknown) => problems.push(String(err)))
  } else {
    problems.push(`left ${handles.root} in place because the ${handles.engine.info.flavour} engine did not stop`)
  }
  if (problems.length > 0) throw new Error(`testbed teardown:\n${problems.join('\n')}`)
}
