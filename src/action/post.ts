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
 * The post step of `scope: job`: removes what the job added. It runs after
 * failed and cancelled jobs too, so it warns rather than fails for what is
 * not its fault: no record, or an engine that went away. An input only it
 * asks the engine about (free space under the data root, an image a filter
 * names) fails it: in job scope the main step only records.
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
 * The inputs, read again; undefined when they are invalid, which the main step reported: it
 * reads them first, in either scope, and failed with their sentence.
 */
function inputsAgain(): Settings | undefined {
  try {
    return getSettings()
  } catch (error) {
    if (error instanceof InputError) return undefined
    throw error
  }
}
