import * as core from '@actions/core'
import { getSettings } from './inputs'
import { actionLog } from './log'
import { openEngine, type OpenEngine } from '../run/open'
import { reclaim } from '../run/reclaim'
import { publish } from './publish'
import { recordName } from '../engine/records'
import { beginJob } from '../run/jobs'
import { currentJob } from './job'
import { saveCacheIds, saveRecordName, saveSnapshot } from './state'
import { recordCache } from '../run/cache'

/** The main step: remove what was asked, or in job scope only record what is there. */
export async function main(open: OpenEngine = openEngine): Promise<void> {
  try {
    const settings = getSettings()
    const engine = await open(settings, actionLog)
    if (settings.scope === 'job') {
      const job = currentJob()
      // Saved before the record is made, so that the post step can remove a record made by a
      // main step that failed after it.
      const name = recordName(job)
      saveRecordName(name)
      saveSnapshot((await beginJob(engine, name, job, actionLog)).snapshot)
      if (settings.buildCache !== 'none') saveCacheIds(await recordCache(engine, actionLog))
      return
    }
    const result = await reclaim(engine, settings, actionLog)
    await publish(result, settings)
  } catch (error) {
    core.setFailed(error instanceof Error ? error.message : String(error))
  }
}
