import { bed } from '../../testbed/bed'
import { runBundle, type ActionRun, type RunOptions } from '../../testbed/runner'

export { bed } from '../../testbed/bed'
export { REPO_ROOT, type ActionRun } from '../../testbed/runner'

/** Runs the bundled action against the bed's engine. */
export function runAction(inputs: Record<string, string>, opts: Partial<RunOptions> = {}): Promise<ActionRun> {
  return runBundle(inputs, { host: bed().host, ...opts })
}
