import { removeRoot, takeHandles } from '../../testbed/bed'

export default async function teardown(): Promise<void> {
  const handles = takeHandles()
  if (handles === undefined) return
  const problems: string[] = []
  const stopped = await Promise.allSettled([handles.engine.stop(), handles.registry.stop()])
  for (const s of stopped) if (s.status === 'rejected') problems.push(String(s.reason))
  // The root is only safe to remove once dockerd has exited and released its mounts.
  if (stopped[0].status === 'fulfilled') {
    await removeRoot(handles.root).catch((err: unknown) => problems.push(String(err)))
  } else {
    problems.push(`left ${handles.root} in place because dockerd did not stop`)
  }
  if (problems.length > 0) throw new Error(`testbed teardown:\n${problems.join('\n')}`)
}
