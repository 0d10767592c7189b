import { beforeEach, describe, expect, test } from '@jest/globals'
import { BUSYBOX } from '../../testbed/scene'
import { expectLayerBytes, expectReclaimed, idsOf, storage, succeeded, tagsOf } from './checks'
import { bed, runAction, type ActionRun } from './harness'

const { scene } = bed()
const MB = 1_000_000

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

/** The post step as the runner starts it: the main step's saved state comes back as STATE_* variables. */
function postStep(
  inputs: Record<string, string>,
  main: ActionRun,
  env: Record<string, string> = {}
): Promise<ActionRun> {
  const state = Object.fromEntries(Object.entries(main.state).map(([name, value]) => [`STATE_${name}`, value]))
  return runAction(inputs, { env: { ...state, ...env } })
}

describe('scope: job removes what the job added, and nothing older', () => {
  test('new images, new tags on old images and new images on old bases go; everything older stays', async () => {
    await scene.build('base:1', { bytes: MB })
    await scene.build('old:1', { bytes: MB })
    await scene.dangling('olddangling')
    const idsBefore = await idsOf(scene)
    const tagsBefore = await tagsOf(scene)

    const main = await runAction({ scope: 'job' })
    expect(main.code).toBe(0)
    expect(main.state.isPost).toBe('true')
    expect(await idsOf(scene)).toEqual(idsBefore)

    await scene.tag('old:1', 'old:from-job')
    await scene.build('fresh:1', { bytes: 2 * MB })
    await scene.build('onbase:1', { from: 'base:1', bytes: MB, labels: { built: 'by-job' } })
    await scene.dangling('jobdangling')
    const before = await storage(scene)

    const out = succeeded(await postStep({ scope: 'job' }, main))
    expect(await idsOf(scene)).toEqual(idsBefore)
    expect(await tagsOf(scene)).toEqual(tagsBefore)
    expect(out.untagged).toContain('old:from-job')
    expectReclaimed(out.bytes, before, await storage(scene), out.deleted.length)
    // fresh:1, onbase:1's layer, and jobdangling's two builds of 100 kB each.
    expectLayerBytes(out.bytes, 2 * MB, MB, 100_000, 100_000)
  })

  test('refs and prune apply only to what the job added', async () => {
    const old = await scene.dangling('older')
    await scene.build('app:old', { bytes: MB })
    const main = await runAction({ scope: 'job' })
    await scene.build('app:new', { bytes: MB })
    const fresh = await scene.dangling('newer')
    const out = succeeded(await postStep({ scope: 'job', refs: 'app:old app:*', prune: 'dangling' }, main))
    expect(out.skipped).toEqual([expect.objectContaining({ ref: 'app:old', reason: 'kept' })])
    expect(out.untagged).toEqual(['app:new'])
    expect(out.deleted).toContain(fresh)
    expect(await idsOf(scene)).toContain(old)
    expect(await tagsOf(scene)).toEqual(['app:old', 'newer:tmp', 'older:tmp', BUSYBOX].sort())
  })

  test('a missing record is a warning and removes nothing', async () => {
    await scene.dangling('unrecorded')
    const ids = await idsOf(scene)
    const run = await runAction({ scope: 'job' }, { env: { STATE_isPost: 'true' } })
    expect(run.code).toBe(0)
    expect(run.stdout).toContain('::warning::The main step recorded no images')
    expect(await idsOf(scene)).toEqual(ids)
  })

  test('an engine that went away is a warning, never a failed job', async () => {
    const main = await runAction({ scope: 'job' })
    const run = await postStep({ scope: 'job' }, main, { DOCKER_HOST: 'unix:///nonexistent/docker.sock' })
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/::warning::Cannot reach the Docker engine at unix:\/\/\/nonexistent\/docker.sock/)
  })

  test('with scope: all the post step does nothing', async () => {
    const main = await runAction({ prune: 'dangling', 'dry-run': 'true' })
    await scene.dangling('later')
    const ids = await idsOf(scene)
    const run = await postStep({}, main)
    expect(run.code).toBe(0)
    expect(run.stdout).toBe('')
    expect(await idsOf(scene)).toEqual(ids)
  })
})
