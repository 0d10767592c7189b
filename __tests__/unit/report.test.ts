import { describe, expect, test } from '@jest/globals'
import { setOutputs } from '../../src/report/outputs'
import { writeSummary } from '../../src/report/summary'
import type { Log } from '../../src/run/log'
import { reclaim, type Result } from '../../src/run/reclaim'
import { INPUT_NAMES, parseSettings, type RawInputs } from '../../src/settings/settings'
import { FakeEngine } from '../fakes/engine'
import { stepsInProcess } from '../fakes/runner'

/** What a step shows of a run: the job summary's HTML and the outputs, from runs on an engine in memory. */

const step = stepsInProcess()
const MB = 1_000_000
const quiet: Log = { info: () => undefined, warning: () => undefined, group: (_name, work) => work() }

async function reclaimed(engine: FakeEngine, inputs: Partial<RawInputs>): Promise<Result> {
  const raw = { ...Object.fromEntries(INPUT_NAMES.map(name => [name, ''])), ...inputs } as RawInputs
  return reclaim(engine, parseSettings(raw, Date.now()), quiet)
}

async function summaryOf(result: Result): Promise<string> {
  return (await step({}, () => writeSummary(result))).summary
}

async function outputsOf(result: Result): Promise<Record<string, string>> {
  return (await step({}, async () => setOutputs(result))).outputs
}

/** The table's rows, each as its cells' text. */
function rows(summary: string): string[][] {
  return [...summary.matchAll(/<tr>(.*?)<\/tr>/g)].map(row =>
    [...row[1].matchAll(/<t[dh][^>]*>(.*?)<\/t[dh]>/g)].map(cell => cell[1].replace(/<[^>]+>/g, ''))
  )
}

describe('the job summary', () => {
  test('the total first, then what was removed with its total, what stayed and why, then storage', async () => {
    const engine = new FakeEngine()
    const app = engine.build('app:1', { bytes: 2 * MB })
    engine.build(['multi:1', 'multi:2'], { bytes: MB })
    const live = engine.build('live:1', { bytes: MB })
    const container = engine.run('live:1', { running: true })
    const summary = await summaryOf(await reclaimed(engine, { refs: 'app:1 multi:2 live:1 ghost:1' }))
    expect(summary).toMatch(/^<h2>Docker images: reclaimed 2MB<\/h2>\n/)
    expect(summary).toContain(
      '<p>Exactly <b>2,000,000 bytes</b> of image storage freed on <code>unix:///fake/docker.sock</code>: ' +
        '<b>1</b> image deleted, <b>2</b> tags removed, <b>2</b> left in place.</p>'
    )
    expect(rows(summary)).toEqual([
      ['Image', 'ID', 'Age', 'Freed', 'Outcome'],
      ['app:1', app.slice(7, 19), 'just&nbsp;now', '2MB', 'Deleted'],
      ['multi:2', expect.any(String), 'just&nbsp;now', '0B', 'Untagged: only the tag was removed'],
      ['Total', '2MB', ''],
      ['Left in place (2)'],
      ['ghost:1', '–', '–', '–', 'Not found: no image has this name or ID'],
      [
        'live:1',
        live.slice(7, 19),
        'just&nbsp;now',
        '–',
        `In use by a running container: never removed (container ${container.slice(0, 12)})`
      ]
    ])
    expect(summary).toContain('<p>Image storage on the engine: <b>4MB</b> before → <b>2MB</b> after.</p>')
    // One HTML block: a blank line would end it, and GitHub would read the rest as Markdown.
    expect(summary.trimEnd()).not.toMatch(/\n\s*\n/)
  })

  test('a dry run says so in the headline, above the table and in its figures', async () => {
    const engine = new FakeEngine()
    engine.dangling('old')
    const summary = await summaryOf(await reclaimed(engine, { 'dry-run': 'true' }))
    expect(summary).toMatch(/^<h2>Docker images: would reclaim 100kB \(dry run\)<\/h2>/)
    expect(summary).toContain('<blockquote><b>Dry run</b>: nothing was removed or untagged.')
    expect(summary).toContain('<th align="right">Would&nbsp;free</th>')
    expect(summary).toContain('after (predicted).</p>')
    expect(rows(summary)[1][4]).toBe('Would be deleted')
  })

  test('with nothing to remove it says so instead of an empty table', async () => {
    const summary = await summaryOf(await reclaimed(new FakeEngine(), {}))
    expect(summary).toContain('<p>No image matched: there was nothing to remove.</p>')
    expect(summary).not.toContain('<table>')
  })

  test('names from the engine never become markup', async () => {
    const engine = new FakeEngine()
    engine.build('web_app:v_1')
    const summary = await summaryOf(await reclaimed(engine, { refs: 'web_app:v_1' }))
    expect(rows(summary)[1][0]).toBe('web&#95;app:v&#95;1')
    expect(summary).not.toContain('web_app')
  })

  test('a storage target: the goal, and whether the run met it', async () => {
    const engine = new FakeEngine()
    engine.build('old:1', { bytes: 3 * MB, created: Date.now() - 3_600_000 })
    engine.build('new:1', { bytes: 2 * MB })
    const met = await summaryOf(await reclaimed(engine, { 'max-storage': '2.5MB', 'dry-run': 'true' }))
    expect(met).toContain('<p>Target: image storage at most <b>2.5MB</b>: <b>would be met</b>.</p>')
    expect(rows(met)[1][4]).toBe('Would be deleted (storage target: least recently used first)')
    const missed = await summaryOf(await reclaimed(engine, { 'max-storage': '1MB', keep: 'new:1' }))
    expect(missed).toContain('<b>not met</b>: what is left is kept by keep rules, filters or containers.</p>')
  })

  test('on a store with no figure for what removals free, there is no storage line', async () => {
    const engine = new FakeEngine('containerd')
    engine.build('app:1')
    const summary = await summaryOf(await reclaimed(engine, { refs: 'app:1' }))
    expect(summary).not.toContain('Image storage on the engine')
  })
})

describe('the outputs', () => {
  test('what was removed, the figures as strings, and skips without their internal fields', async () => {
    const engine = new FakeEngine()
    const app = engine.build('app:1', { bytes: MB })
    const outputs = await outputsOf(await reclaimed(engine, { refs: 'app:1 ghost:1' }))
    expect(outputs).toEqual({
      'reclaimed-bytes': String(MB),
      reclaimed: '1MB',
      'build-cache-reclaimed-bytes': '0',
      deleted: JSON.stringify([app]),
      'deleted-count': '1',
      untagged: '["app:1"]',
      'storage-before': String(MB),
      'storage-after': '0',
      'target-met': '',
      skipped: JSON.stringify([{ ref: 'ghost:1', id: '', reason: 'not-found', message: 'No such image: ghost:1' }])
    })
  })

  test('storage figures are empty where the engine has none, and target-met follows the target', async () => {
    const engine = new FakeEngine('podman')
    engine.build('app:1', { bytes: MB })
    const outputs = await outputsOf(await reclaimed(engine, { 'max-storage': '10MB' }))
    expect(outputs).toMatchObject({ 'storage-before': String(MB), 'storage-after': String(MB), 'target-met': 'true' })
    const none = await outputsOf(await reclaimed(engine, { refs: 'app:1' }))
    expect(none).toMatchObject({ 'storage-before': '', 'storage-after': '', 'target-met': '' })
  })
})
