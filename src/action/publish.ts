import * as core from '@actions/core'
import { conclude } from '../report/conclude'
import { setOutputs } from '../report/outputs'
import { writeSummary } from '../report/summary'
import type { Result } from '../run/reclaim'
import { actionLog } from './log'

/** Everything a step shows of a finished run: outputs, summary, warnings, and its failure if any. */
export async function publish(result: Result, settings: { summary: boolean; failOnError: boolean }): Promise<void> {
  setOutputs(result)
  if (settings.summary) await writeSummary(result)
  const failure = conclude(result, settings.failOnError, actionLog)
  if (failure) core.setFailed(failure)
}
