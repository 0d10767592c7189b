import * as core from '@actions/core'
import { getSettings } from './inputs'
import { reclaim } from './reclaim'
import { conclude, setOutputs, writeSummary } from './report'

async function main(): Promise<void> {
  try {
    const settings = getSettings()
    const result = await reclaim(settings)
    setOutputs(result)
    if (settings.summary) await writeSummary(result)
    const failure = conclude(result, settings)
    if (failure) core.setFailed(failure)
  } catch (error) {
    core.setFailed(error instanceof Error ? error.message : String(error))
  }
}

void main()
