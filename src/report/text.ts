import { shortId } from '../common/ids'
import { formatAge, formatBytes } from '../common/units'
import type { Result } from '../run/reclaim'
import { totalBytes } from '../run/cache'

/** The command line's report: a total, one line per image, then storage. */
export function textReport(result: Result): string {
  const verb = result.dryRun ? 'Would reclaim' : 'Reclaimed'
  const total = totalBytes(result)
  const lines = [
    `${verb} ${formatBytes(total)} (${total} bytes) on ${result.endpoint}: ` +
      `${result.deleted.length} deleted, ${result.untagged.length} untagged, ${result.skipped.length} skipped`
  ]
  for (const row of result.rows) {
    const age = row.created === undefined ? '' : formatAge(row.created, result.now)
    lines.push(
      `  ${row.outcome.padEnd(20)} ${row.ref.padEnd(40)} ${shortId(row.id).padEnd(12)} ${age.padEnd(10)} ${formatBytes(row.bytes)}`
    )
  }
  const { storageBefore, storageAfter } = result
  if (storageBefore !== undefined && storageAfter !== undefined) {
    lines.push(`Image storage: ${formatBytes(storageBefore)} before, ${formatBytes(storageAfter)} after.`)
  }
  if (result.target) lines.push(`Storage target ${result.target.met ? 'met' : 'not met'}.`)
  if (result.cache) lines.push(cacheText(result.cache, result.dryRun))
  return `${lines.join('\n')}\n`
}

function cacheText(cache: NonNullable<Result['cache']>, dryRun: boolean): string {
  if (cache.absent) return 'Build cache: the engine keeps none (Podman), so there was nothing to remove.'
  if (cache.leftForOthers) return 'Build cache: left for the other jobs still running on this engine.'
  const held = cache.held > 0 ? `; ${cache.held} held data an image still uses, not counted` : ''
  return (
    `Build cache (${cache.mode})${cache.forTarget ? ' for the storage target' : ''}: ${cache.removed.length} records ${dryRun ? 'would be removed' : 'removed'}, ` +
    `${formatBytes(cache.bytes)} (${cache.bytes} bytes)${held}.`
  )
}

/** The command line's report for programs: the action's outputs, in camelCase. */
export function jsonReport(result: Result): string {
  const { deleted, untagged, skipped, dryRun, endpoint, storageBefore, storageAfter, target } = result
  const total = totalBytes(result)
  const body = {
    reclaimedBytes: total,
    reclaimed: formatBytes(total),
    buildCacheReclaimedBytes: result.cache?.bytes ?? 0,
    deleted,
    untagged,
    skipped: skipped.map(({ ref, id, reason, message }) => ({ ref, id, reason, message })),
    dryRun,
    endpoint,
    storageBefore,
    storageAfter,
    targetMet: target?.met
  }
  return `${JSON.stringify(body, null, 2)}\n`
}
