import { beforeEach, describe, expect, test } from '@jest/globals'
import { BUSYBOX } from '../../testbed/scene'
import { succeeded } from './checks'
import { bed, runAction, type ActionRun } from './harness'

const { scene } = bed()
/** Only overlay2 has a figure for image storage that falls by what removals free (testbed/ENGINES.md). */
const storageLine = bed().engine.imageStore === 'overlay2'
const MB = 1_000_000

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

/** The table's rows, each as its cells' inner HTML; group rows are cells too. */
function tableRows(summary: string): string[][] {
  const table = /<table>([\s\S]*?)<\/table>/.exec(summary)?.[1]
  if (table === undefined) throw new Error(`no table in the summary:\n${summary}`)
  return [...table.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map(([, row]) =>
    [...row.matchAll(/<t[dh][^>]*>([\s\S]*?)<\/t[dh]>/g)].map(([, cell]) => cell)
  )
}

/** The opening tag of each row's size cell: the fourth of a row, the second of the total's (it spans three). */
function sizeCells(summary: string): string[] {
  const rows = [...summary.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map(([, row]) =>
    [...row.matchAll(/<t[dh][^>]*>/g)].map(([open]) => open)
  )
  return rows.filter(opens => opens.length > 1).map(opens => (opens[0].includes('colspan="3"') ? opens[1] : opens[3]))
}

let container = ''

/**
 * A scene with something of every kind: deletions, an untag, a missing ref, a running container's
 * image, a kept one.
 */
async function everyKind(): Promise<Record<string, string>> {
  await scene.build('gone:1', { bytes: MB })
  await scene.build(['multi:1', 'multi:2'], { bytes: 2 * MB })
  await scene.build('keepme:1', { bytes: MB })
  await scene.build('service:live', { from: BUSYBOX, bytes: MB })
  container = (await scene.runContainer('service:live', { running: true })).trim()
  await scene.dangling('leftover')
  return { refs: 'keepme:1 gone:1 service:live absent:1 multi:1', keep: 'keepme:1', prune: 'dangling' }
}

function summaryOf(run: ActionRun): string {
  succeeded(run)
  expect(run.summary).not.toBe('')
  return run.summary
}

describe('the job summary, for people', () => {
  test('the total comes first; removals and their total, then what stayed, grouped by reason in words', async () => {
    const inputs = await everyKind()
    const run = await runAction(inputs)
    const summary = summaryOf(run)
    const out = succeeded(run)
    const lines = summary.trimEnd().split('\n')
    expect(lines[0]).toBe(`<h2>Docker images: reclaimed ${run.outputs.reclaimed}</h2>`)
    expect(lines[1]).toContain(`Exactly <b>${out.bytes.toLocaleString('en-US')} bytes</b> of image storage freed`)
    expect(lines[1]).toContain(
      `<b>${out.deleted.length}</b> images deleted, <b>${out.untagged.length}</b> tags removed, <b>3</b> left in place.`
    )

    const rows = tableRows(summary)
    expect(rows[0]).toEqual(['Image', 'ID', 'Age', 'Freed', 'Outcome'])
    const outcome = (ref: string): string | undefined => rows.find(cells => cells[0] === ref)?.[4]
    const order = rows.map(cells => cells[0])
    const total = order.indexOf('<b>Total</b>')
    // Refs are handled in the order given, then the prune: its dangling images have no name.
    expect(order.slice(1, 3)).toEqual(['gone:1', 'multi:1'])
    expect(total).toBeGreaterThan(3)
    for (const name of order.slice(3, total)) expect(name).toBe('<i>&#60;none&#62;</i>')
    expect(outcome('gone:1')).toBe('Deleted')
    expect(outcome('multi:1')).toBe('Untagged: only the tag was removed')
    expect(rows[total]).toEqual(['<b>Total</b>', `<b>${run.outputs.reclaimed}</b>`, ''])
    expect(rows[total + 1]).toEqual(['Left in place (3)'])
    // Grouped by reason, the ones that need attention first, whatever order the refs were named in.
    expect(order.slice(total + 2)).toEqual(['absent:1', 'service:live', 'keepme:1'])
    expect(outcome('absent:1')).toBe('Not found: no image has this name or ID')
    // Which container holds it, so that a person can find it.
    expect(outcome('service:live')).toBe(
      `In use by a running container: never removed (container <code>${container.slice(0, 12)}</code>)`
    )
    expect(outcome('keepme:1')).toBe('Kept by a keep rule')
    expect(rows.find(cells => cells[0] === 'absent:1')?.slice(1, 4)).toEqual(['–', '–', '–'])
    expect(rows.find(cells => cells[0] === 'gone:1')?.[1]).toMatch(/^<code>[0-9a-f]{12}<\/code>$/)

    // The size column is right-aligned on every row, so that the sizes line up.
    const sizes = sizeCells(summary)
    expect(sizes).toHaveLength(1 + (total - 1) + 1 + 3)
    expect(sizes[0]).toBe('<th align="right">')
    for (const open of sizes.slice(1)) expect(open).toBe('<td align="right">')
    if (storageLine)
      expect(lines.at(-1)).toMatch(
        /^<p>Image storage on the engine: <b>[\d.]+[kMG]?B<\/b> before → <b>[\d.]+[kMG]?B<\/b> after\.<\/p>$/
      )
    else expect(lines.at(-1)).toMatch(/<\/table>$/)
  })

  test('an image that is both named and a prune candidate is one row, though skipped may list it twice', async () => {
    await scene.build('service:live', { from: BUSYBOX, bytes: MB })
    await scene.runContainer('service:live', { running: true })
    const run = await runAction({ refs: 'service:live', prune: 'all' })
    const skipped = succeeded(run).skipped.filter(skip => skip.ref === 'service:live')
    // Docker's engines list it for the ref and for the prune; Podman's only for the ref.
    expect(skipped.length).toBeGreaterThanOrEqual(1)
    for (const skip of skipped) expect(skip.reason).toBe('in-use')
    const rows = tableRows(summaryOf(run)).filter(cells => cells[0] === 'service:live')
    expect(rows).toHaveLength(1)
  })

  test('a dry run says so in the heading, a note, every outcome and the storage line', async () => {
    const inputs = await everyKind()
    const summary = summaryOf(await runAction({ ...inputs, 'dry-run': 'true' }))
    const lines = summary.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^<h2>Docker images: would reclaim [\d.]+[kM]B \(dry run\)<\/h2>$/)
    expect(lines[1]).toBe(
      '<blockquote><b>Dry run</b>: nothing was removed or untagged. This is what a real run would do.</blockquote>'
    )
    expect(lines[2]).toContain('would be freed')
    const rows = tableRows(summary)
    const removals = rows.slice(
      1,
      rows.findIndex(cells => cells[0] === '<b>Total</b>')
    )
    expect(removals.length).toBeGreaterThanOrEqual(3)
    for (const [ref, , , , words] of removals)
      expect(words).toBe(ref === 'multi:1' ? 'Would be untagged: only the tag goes' : 'Would be deleted')
    expect(removals.map(cells => cells[0])).toContain('multi:1')
    expect(summary).toContain('<th align="right">Would&nbsp;free</th>')
    if (storageLine) expect(lines.at(-1)).toMatch(/ after \(predicted\)\.<\/p>$/)
    else expect(summary).not.toContain('Image storage')
  })

  test('Markdown in an image name stays text', async () => {
    // Valid Docker names can hold __ and _, which Markdown reads as bold and italics.
    await scene.build('md__bold/x_y:__tag__', { bytes: MB })
    const summary = summaryOf(await runAction({ refs: 'md__bold/x_y:__tag__ ab__cd:no_such_tag' }))
    const rows = tableRows(summary)
    expect(rows[1][0]).toBe('md&#95;&#95;bold/x&#95;y:&#95;&#95;tag&#95;&#95;')
    expect(rows.find(cells => cells[0] === 'ab&#95;&#95;cd:no&#95;such&#95;tag')?.[4]).toBe(
      'Not found: no image has this name or ID'
    )
    expect(summary).not.toContain('_')
  })

  test('only markup GitHub keeps, as one HTML block, and nothing raw', async () => {
    const summary = summaryOf(await runAction(await everyKind()))
    // A blank line would end GitHub's HTML block and let Markdown loose on what follows.
    expect(summary.trimEnd()).not.toMatch(/\n\s*\n/)
    const tags = new Set([...summary.matchAll(/<\/?([a-z0-9]+)/g)].map(([, tag]) => tag))
    const allowed = ['h2', 'p', 'b', 'i', 'code', 'blockquote', 'table', 'thead', 'tbody', 'tr', 'th', 'td']
    for (const tag of tags) expect(allowed).toContain(tag)
    const attributes = new Set(
      [...summary.matchAll(/<[a-z0-9]+((?:\s+[a-z-]+="[^"]*")*)\s*>/g)].flatMap(([, attrs]) =>
        [...attrs.matchAll(/([a-z-]+)=/g)].map(([, name]) => name)
      )
    )
    for (const name of attributes) expect(['align', 'colspan']).toContain(name)
    expect(summary).not.toMatch(/[[{]"|sha256:/)
  })

  test('with nothing to remove it says so, with no empty table', async () => {
    const summary = summaryOf(await runAction({}))
    expect(summary.split('\n')[0]).toBe('<h2>Docker images: reclaimed 0B</h2>')
    expect(summary).toContain('<p>No image matched: there was nothing to remove.</p>')
    expect(summary).not.toContain('<table')
  })
})
