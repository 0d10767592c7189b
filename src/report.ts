import * as core from '@actions/core'
import { shortId } from './simulation'
import { formatAge, formatBytes } from './units'
import type { Result, Row } from './reclaim'
import type { Log } from './log'
import type { SkipReason } from './model'

/** Reasons that mean a named ref could not be removed; keep rules are the user's own wish. */
const FAILURES: SkipReason[] = ['not-found', 'ambiguous', 'in-use', 'in-use-stopped', 'multiple-references', 'has-children', 'error']

export function setOutputs(result: Result): void {
  core.setOutput('reclaimed-bytes', String(result.bytes))
  core.setOutput('reclaimed', formatBytes(result.bytes))
  core.setOutput('deleted', JSON.stringify(result.deleted))
  core.setOutput('deleted-count', String(result.deleted.length))
  core.setOutput('untagged', JSON.stringify(result.untagged))
  core.setOutput(
    'skipped',
    JSON.stringify(result.skipped.map(({ ref, id, reason, message }) => ({ ref, id, reason, message })))
  )
}

/** Warns about each named ref that was skipped; returns the sentence to fail with, if any. */
export function conclude(result: Result, failOnError: boolean, log: Log): string | undefined {
  const named = result.skipped.filter(skip => skip.named)
  for (const skip of named) log.warning(`${skip.ref}: ${skip.reason}: ${skip.message}`)
  const failures = named.filter(skip => FAILURES.includes(skip.reason))
  log.info(
    `${result.dryRun ? 'Would reclaim' : 'Reclaimed'} ${formatBytes(result.bytes)} (${result.bytes} bytes): ` +
      `${result.deleted.length} deleted, ${result.untagged.length} untagged, ${result.skipped.length} skipped`
  )
  if (!failOnError || failures.length === 0) return undefined
  const refs = failures.map(f => f.ref).join(', ')
  return `${failures.length} of the named refs could not be removed (${refs}); see the warnings above.`
}

/** The job summary: the total first, then every row, then the engine's storage. */
export async function writeSummary(result: Result): Promise<void> {
  const title = result.dryRun ? 'Docker images: would reclaim' : 'Docker images: reclaimed'
  const scope = result.jobScope ? ' from what this job added' : ''
  const summary = core.summary
    .addHeading(`${title} ${formatBytes(result.bytes)}${scope}`, 2)
    .addRaw(
      `${result.deleted.length} deleted, ${result.untagged.length} untagged, ${result.skipped.length} skipped ` +
        `on ${escape(result.endpoint)}${result.dryRun ? ' (dry run: nothing was changed)' : ''}.`,
      true
    )
  if (result.rows.length > 0) {
    summary.addTable([
      [
        { data: 'Reference', header: true },
        { data: 'Image', header: true },
        { data: 'Age', header: true },
        { data: 'Freed', header: true },
        { data: 'Outcome', header: true }
      ],
      ...result.rows.map(row => rowCells(row, result.now))
    ])
  }
  summary.addRaw(
    `Image storage: ${formatBytes(result.storageBefore)} before, ${formatBytes(result.storageAfter)} after` +
      `${result.dryRun ? ' (predicted)' : ''}.`,
    true
  )
  try {
    await summary.write()
  } catch (error) {
    core.warning(`Could not write the job summary: ${(error as Error).message}`)
  }
}

function rowCells(row: Row, now: number): string[] {
  return [
    escape(row.ref),
    row.id ? `<code>${shortId(row.id)}</code>` : '',
    row.created === undefined ? '' : formatAge(row.created, now),
    formatBytes(row.bytes),
    row.outcome
  ]
}

/** Image names and messages come from the engine: none of it may become markup. */
function escape(text: string): string {
  return text.replace(/[&<>"'`|*_[\]\\]/g, ch => `&#${ch.charCodeAt(0)};`)
}
