import { afterEach } from '@jest/globals'
import { bed } from '../../testbed/bed'
import { startProxy, type Hook, type Proxy } from '../../testbed/proxy'
import { runBundle, type ActionRun, type RunOptions } from '../../testbed/runner'

export { bed } from '../../testbed/bed'
export { REPO_ROOT, type ActionRun } from '../../testbed/runner'

/** Runs the bundled action against the bed's engine. */
export function runAction(inputs: Record<string, string>, opts: Partial<RunOptions> = {}): Promise<ActionRun> {
  return runBundle(inputs, { host: bed().host, ...opts })
}

/**
 * Proxies in front of the bed's engine for the tests of one file: each is
 * closed after the test that started it.
 */
export function proxiesPerTest(): (listenOn: string | number, hook: Hook) => Promise<Proxy> {
  const open: Proxy[] = []
  afterEach(async () => {
    await Promise.all(open.splice(0).map(proxy => proxy.close()))
  })
  return async (listenOn, hook) => {
    const proxy = await startProxy(bed().scene.socket, listenOn, hook)
    open.push(proxy)
    return proxy
  }
}
