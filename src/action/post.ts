import * as core from '@actions/core'
import { EngineError } from '../engine/engine'
import { InputError } from '../common/errors'
import type { Settings } from '../settings/settings'
import { getSettings } from './inputs'
import { actionLog } from './log'
import { openEngine, type OpenEngine } from '../run/open'
import { publish } from './publish'
import { endJob } from '../run/jobs'
import { loadCacheIds, loadRecordName, loadSnapshot } from './state'

/**
 * The post step of `scope: job`: removes what the job added. It runs after failed and cancelled
 * jobs too, so it only warns when the cause is not its own: no record from the main step, or an
 * engine that went away. An input that can only be checked against the engine (min-free needs the
 * data root on this machine; a before or since filter must name an image there) does fail it,
 * because in job scope the main step only records images and never makes those checks.
 */
export async function post(open: OpenEngine = openEngine): Promise<void> {
  try {
    const settings = inputsAgain()
    if (settings?.scope !== 'job') return
    const preexisting = loadSnapshot()
    if (!preexisting) {
      core.warning('The main step recorded no images (it failed or did not run), so the post step removes nothing.')
      return
    }
    const engine = await open(settings, actionLog)
    const start = { record: loadRecordName(), snapshot: preexisting, cache: loadCacheIds() }
    const result = await endJob(engine, settings, start, actionLog)
    await publish(result, settings)
  } catch (error) {
    if (error instanceof EngineError) return core.warning(`${error.message} The post step removed nothing more.`)
    core.setFailed(error instanceof Error ? error.message : String(error))
  }
}

/**
 * Reads the inputs again. Returns undefined when they are invalid: the main step reads them first,
 * in either scope, and has already failed with the error, so the post step says nothing more.
 */
function inputsAgain(): Settings | undefined {
  try {
    return getSettings()
  } catch (error) {
    if (error instanceof InputError) return undefined
    throw error
  }
}
