import * as core from '@actions/core'
import { getSettings } from './inputs'
import { actionLog } from './log'
import { openEngine, type OpenEngine } from '../run/open'
import { reclaim, snapshotImages } from '../run/reclaim'
import { publish } from './publish'
import { saveSnapshot } from './state'

/** The main step: remove what was asked, or in job scope only record what is there. */
export async function main(open: OpenEngine = openEngine): Promise<void> {
  try {
    const settings = getSettings()
    const engine = await open(settings, actionLog)
    if (settings.scope === 'job') {
      saveSnapshot(await snapshotImages(engine, actionLog))
      return
    }
    const result = await reclaim(engine, settings, actionLog)
    await publish(result, settings)
  } catch (error) {
    core.setFailed(error instanceof Error ? error.message : String(error))
  }
}
