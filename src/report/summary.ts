import * as core from '@actions/core'
import { shortId } from '../common/ids'
import { formatAge, formatBytes, groupThousands } from '../common/units'
import type { Result, Row } from '../run/reclaim'
import type { SkipReason } from '../plan/model'
import { totalBytes } from '../run/cache'

/** What each outcome means, in the words of the person reading the summary. */
const REMOVED_WORDS: Record<'deleted' | 'untagged', [real: string, dry: string]> = {
  deleted: ['Deleted', 'Would be deleted'],
  untagged: ['Untagged: only the tag was removed', 'Would be untagged: only the tag goes']
}

function removedWords(row: Row, dryRun: boolean): string {
  const words = REMOVED_WORDS[row.outcome as 'deleted' | 'untagged'][dryRun ? 1 : 0]
  return row.forTarget ? `${words} (storage target: least recently used first)` : words
}

const SKIP_WORDS: Record<SkipReason, string> = {
  'not-found': 'Not found: no image has this name or ID',
  ambiguous: 'Ambiguous: this short ID matches several images',
  'in-use': 'In use by a running container: never removed',
  'in-use-stopped': 'Used by a stopped container',
  'multiple-references': 'Has several tags: name one tag, or set force',
  'has-children': 'Other images are built on it',
  kept: 'Kept by a keep rule',
  'too-recent': 'Newer than keep-duration',
  'other-job': 'Left for another job that is still running on this engine',
  error: 'The engine refused'
}

/** Skipped rows are grouped by reason, in this order: what needs the reader's attention first. */
const SKIP_ORDER = Object.keys(SKIP_WORDS) as SkipReason[]

interface SkipLine {
  row: Row
  message: string
}

/**
 * The job summary, for people: the total first, then one table (what was removed, with its
 * total, then what stayed and why), then the engine's image storage before and after.
 * Everything is HTML without blank lines, so GitHub renders it as one HTML block and no
 * Markdown inside it is interpreted; every string from the user or the engine is escaped.
 */
export async function writeSummary(result: Result): Promise<void> {
  const removals = result.rows.filter(row => row.outcome === 'deleted' || row.outcome === 'untagged')
  const skips = skipLines(result)
  const summary = core.summary.addHeading(headline(result), 2)
  if (result.dryRun)
    summary.addQuote('<b>Dry run</b>: nothing was removed or untagged. This is what a real run would do.')
  summary.addRaw(overview(result, skips.length), true)
  if (removals.length + skips.length > 0) summary.addRaw(table(result, removals, skips), true)
  else summary.addRaw('<p>No image matched: there was nothing to remove.</p>', true)
  if (result.cache) summary.addRaw(cacheLine(result.cache, result.dryRun), true)
  const storage = storageLine(result)
  if (storage) summary.addRaw(storage, true)
  if (result.lastUseSource) summary.addRaw(`<p>Last use: ${escape(result.lastUseSource)}.</p>`, true)
  try {
    await summary.write()
  } catch (error) {
    core.warning(`Could not write the job summary: ${(error as Error).message}`)
  }
}

function headline(result: Result): string {
  const verb = result.dryRun ? 'would reclaim' : 'reclaimed'
  const scope = result.jobScope ? ' from what this job added' : ''
  const what = result.cache && !result.cache.absent ? 'Docker images and build cache' : 'Docker images'
  return `${what}: ${verb} ${formatBytes(totalBytes(result))}${scope}${result.dryRun ? ' (dry run)' : ''}`
}

/** The build cache beside the images: what went, and the bytes that left the disk with it. */
function cacheLine(cache: NonNullable<Result['cache']>, dryRun: boolean): string {
  if (cache.absent)
    return '<p>Build cache: this engine keeps none (Podman builds with Buildah), so there was nothing to remove.</p>'
  if (cache.leftForOthers)
    return "<p>Build cache: left in place, since other jobs still run on this engine and their records cannot be told from this job's.</p>"
  const count = cache.removed.length
  const records = `<b>${count}</b> record${count === 1 ? '' : 's'} ${dryRun ? 'would be removed' : 'removed'}`
  const bytes = `<b>${groupThousands(cache.bytes)} byte${cache.bytes === 1 ? '' : 's'}</b> ${dryRun ? 'would be freed' : 'freed'}`
  const held =
    cache.held > 0
      ? ` ${cache.held} of ${dryRun ? 'them hold' : 'them held'} data an image still uses: that stays on disk and is not counted.`
      : ''
  const why = cache.forTarget ? ' (storage target: least recently used first)' : ''
  return `<p>Build cache (<code>${cache.mode}</code>)${why}: ${records}, ${bytes}.${held}</p>`
}

function overview(result: Result, left: number): string {
  const bytes = `${groupThousands(result.bytes)} byte${result.bytes === 1 ? '' : 's'}`
  const counts = [
    `<b>${result.deleted.length}</b> image${result.deleted.length === 1 ? '' : 's'} ${result.dryRun ? 'to delete' : 'deleted'}`,
    `<b>${result.untagged.length}</b> tag${result.untagged.length === 1 ? '' : 's'} ${result.dryRun ? 'to remove' : 'removed'}`,
    `<b>${left}</b> left in place`
  ]
  const freed = result.dryRun ? 'would be freed' : 'freed'
  return `<p>Exactly <b>${bytes}</b> of image storage ${freed} on <code>${escape(result.endpoint)}</code>: ${counts.join(', ')}.</p>`
}

/** Left out where the engine has no figure for what removals free (Podman, the containerd store). */
function storageLine(result: Result): string | undefined {
  if (result.storageBefore === undefined || result.storageAfter === undefined) return undefined
  const before = formatBytes(result.storageBefore)
  const after = formatBytes(result.storageAfter)
  const predicted = result.dryRun ? ' (predicted)' : ''
  const what = result.target?.withCache ? 'Image storage and build cache' : 'Image storage'
  const line = `<p>${what} on the engine: <b>${before}</b> before → <b>${after}</b> after${predicted}.</p>`
  return result.target ? line + targetLine(result.target, result.dryRun) : line
}

function targetLine(target: NonNullable<Result['target']>, dryRun: boolean): string {
  const goals = []
  const share = (percent: number | undefined): string => (percent === undefined ? '' : ` (${percent}% of the disk)`)
  if (target.maxStorage !== undefined)
    goals.push(
      `${target.withCache ? 'image storage and build cache' : 'image storage'} at most ` +
        `<b>${formatBytes(target.maxStorage)}</b>${share(target.maxStoragePercent)}`
    )
  if (target.minFree !== undefined) {
    const free = `${formatBytes(target.freeBefore ?? 0)} → ${formatBytes(target.freeAfter ?? 0)}`
    goals.push(
      `at least <b>${formatBytes(target.minFree)}</b>${share(target.minFreePercent)} free on the engine's filesystem (${free})`
    )
  }
  const verdict = target.met ? (dryRun ? 'would be met' : 'met') : dryRun ? 'would not be met' : 'not met'
  const why = target.met ? '' : ': what is left is kept by keep rules, filters or containers'
  return `<p>Target: ${goals.join(' and ')}: <b>${verdict}</b>${why}.${spare(target)}</p>`
}

/** What the headroom did: eviction starts only once a target is crossed. */
function spare(target: NonNullable<Result['target']>): string {
  if (target.headroom === undefined) return ''
  const room = `${formatBytes(target.headroom)}${target.headroomPercent === undefined ? '' : ` (${target.headroomPercent}% of the disk)`}`
  return target.crossed
    ? ` A target was crossed, so images went until it held with ${room} to spare.`
    : ` No target was crossed, so nothing was evicted (headroom ${room} applies once one is).`
}

/** One skip per image and reason (a named ref can also be a prune candidate), grouped by reason. */
function skipLines(result: Result): SkipLine[] {
  const messages = new Map(result.skipped.map(skip => [skipKey(skip.ref, skip.id, skip.reason), skip.message]))
  const seen = new Set<string>()
  const lines: SkipLine[] = []
  for (const row of result.rows) {
    if (row.outcome === 'deleted' || row.outcome === 'untagged') continue
    const key = skipKey(row.ref, row.id, row.outcome)
    if (seen.has(key)) continue
    seen.add(key)
    lines.push({ row, message: messages.get(key) ?? '' })
  }
  const rank = (line: SkipLine): number => SKIP_ORDER.indexOf(line.row.outcome as SkipReason)
  return lines.sort((a, b) => rank(a) - rank(b))
}

const skipKey = (ref: string, id: string, reason: string): string => `${ref}\u0000${id}\u0000${reason}`

function table(result: Result, removals: Row[], skips: SkipLine[]): string {
  const head =
    '<thead><tr><th align="left">Image</th><th align="left">ID</th><th align="left">Age</th>' +
    `<th align="right">${result.dryRun ? 'Would&nbsp;free' : 'Freed'}</th><th align="left">Outcome</th></tr></thead>`
  const body: string[] = removals.map(row =>
    tr(
      refCell(row.ref),
      idCell(row.id),
      ageCell(row, result.now),
      sizeCell(formatBytes(row.bytes)),
      td(removedWords(row, result.dryRun))
    )
  )
  if (removals.length > 0) {
    body.push(tr('<td colspan="3"><b>Total</b></td>', sizeCell(`<b>${formatBytes(result.bytes)}</b>`), td('')))
  }
  if (skips.length > 0) {
    body.push(`<tr><th colspan="5" align="left">Left in place (${skips.length})</th></tr>`)
    for (const { row, message } of skips) {
      body.push(
        tr(
          refCell(row.ref),
          idCell(row.id),
          ageCell(row, result.now),
          sizeCell('–'),
          td(skipWords(row.outcome as SkipReason, message))
        )
      )
    }
  }
  return `<table>${head}<tbody>\n${body.join('\n')}\n</tbody></table>`
}

function skipWords(reason: SkipReason, message: string): string {
  const words = SKIP_WORDS[reason] ?? escape(reason)
  const detail = skipDetail(reason, message)
  return detail ? `${words} (${detail})` : words
}

/** The part of a skip's message that the reason's words do not already say, if any. */
function skipDetail(reason: SkipReason, message: string): string {
  const container = /container ([0-9a-f]{12})/.exec(message)?.[1]
  if ((reason === 'in-use' || reason === 'in-use-stopped') && container) return `container <code>${container}</code>`
  // A not-found is either the planner's "No such image" or a race with another process.
  const worthSaying =
    reason === 'error' ||
    reason === 'ambiguous' ||
    reason === 'other-job' ||
    (reason === 'not-found' && !message.startsWith('No such image'))
  return worthSaying && message ? escape(message) : ''
}

const td = (content: string): string => `<td>${content}</td>`
const tr = (...cells: string[]): string => `<tr>${cells.join('')}</tr>`
const sizeCell = (content: string): string => `<td align="right">${content}</td>`
const idCell = (id: string): string => td(id ? `<code>${escape(shortId(id))}</code>` : '–')
const ageCell = (row: Row, now: number): string =>
  td(row.created === undefined ? '–' : nowrap(formatAge(row.created, now)))
/** Short values stay on one line, so that only the outcome's words wrap in a narrow table. */
const nowrap = (text: string): string => text.replace(/ /g, '&nbsp;')
/** Untagged images have no name: `<none>`, as the docker CLI lists them. */
const refCell = (ref: string): string => td(ref === '<none>' ? '<i>&#60;none&#62;</i>' : escape(ref))

/**
 * Image names and messages come from the user and the engine: none of it may become markup.
 * Control characters (a newline could end GitHub's HTML block) become spaces.
 */
function escape(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, ' ').replace(/[&<>"'`|*_[\]\\]/g, ch => `&#${ch.charCodeAt(0)};`)
}
