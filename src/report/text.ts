import { shortId } from '../common/ids'
import { formatAge, formatBytes } from '../common/units'
import type { Result } from '../run/reclaim'

/** The command line's report: a total, one line per image, then storage. */
export function textReport(result: Result): string {
  const verb = result.dryRun ? 'Would reclaim' : 'Reclaimed'
  const lines = [
    `${verb} ${formatBytes(result.bytes)} (${result.bytes} bytes) on ${result.endpoint}: ` +
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
  return `${lines.join('\n')}\n`
}

/** The command line's report for programs: the action's outputs, in camelCase. */
export function jsonReport(result: Result): string {
  const { bytes, deleted, untagged, skipped, dryRun, endpoint, storageBefore, storageAfter, target } = result
  const body = {
    reclaimedBytes: bytes,
    reclaimed: formatBytes(bytes),
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
