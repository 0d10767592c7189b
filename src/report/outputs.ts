import * as core from '@actions/core'
import { formatBytes } from '../common/units'
import type { Result } from '../run/reclaim'
import { totalBytes } from '../run/cache'

/** The step's outputs, as action.yml declares them. */
export function setOutputs(result: Result): void {
  core.setOutput('reclaimed-bytes', String(totalBytes(result)))
  core.setOutput('reclaimed', formatBytes(totalBytes(result)))
  core.setOutput('build-cache-reclaimed-bytes', String(result.cache?.bytes ?? 0))
  core.setOutput('deleted', JSON.stringify(result.deleted))
  core.setOutput('deleted-count', String(result.deleted.length))
  core.setOutput('untagged', JSON.stringify(result.untagged))
  core.setOutput('storage-before', result.storageBefore === undefined ? '' : String(result.storageBefore))
  core.setOutput('storage-after', result.storageAfter === undefined ? '' : String(result.storageAfter))
  core.setOutput('target-met', result.target ? String(result.target.met) : '')
  core.setOutput(
    'skipped',
    JSON.stringify(result.skipped.map(({ ref, id, reason, message }) => ({ ref, id, reason, message })))
  )
}
