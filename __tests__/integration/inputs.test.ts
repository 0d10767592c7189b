import { beforeAll, describe, expect, test } from '@jest/globals'
import { idsOf } from './checks'
import { bed, runAction } from './harness'

const { scene } = bed()

beforeAll(async () => {
  await scene.wipe({ keepBusybox: true })
  await scene.build(['victim:1', 'victim:2'], { bytes: 1000 })
  await scene.dangling('loose')
})

describe('every input is checked before the engine is touched', () => {
  test.each([
    [{ 'keep-duration': 'banana' }, 'keep-duration'],
    [{ force: 'maybe' }, 'force'],
    [{ refs: 'App:1' }, 'refs'],
    [{ refs: 'victim:1 ../containers/x' }, 'refs'],
    [{ filters: 'colour=red' }, 'filters'],
    [{ prune: 'everything' }, 'prune'],
    [{ keep: 'a b%2F' }, 'keep'],
    [{ 'docker-host': 'ftp://example' }, 'docker-host']
  ])('%j fails in one sentence naming the input, and removes nothing', async (inputs, name) => {
    const before = await idsOf(scene)
    const run = await runAction(inputs as Record<string, string>)
    expect(run.code).not.toBe(0)
    const errors = run.stdout.split('\n').filter(line => line.startsWith('::error::'))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toContain(`Input "${name}"`)
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/^\s+at /m)
    expect(await idsOf(scene)).toEqual(before)
  })

  test('a name cannot reach another endpoint: ../containers/<name> leaves the container alone', async () => {
    const container = await scene.runContainer('testbed/busybox:static', { running: false })
    const run = await runAction({ refs: `../containers/${container}`, force: 'true' })
    expect(run.code).not.toBe(0)
    expect((await scene.containers()).map(c => c.id)).toContain(container)
  })

  test('an unreachable engine ends the step within seconds, naming the endpoint', async () => {
    const started = Date.now()
    const run = await runAction({ 'docker-host': 'unix:///nonexistent/docker.sock' })
    expect(run.code).not.toBe(0)
    expect(run.stdout).toMatch(/::error::Cannot reach the Docker engine at unix:\/\/\/nonexistent\/docker.sock/)
    expect(Date.now() - started).toBeLessThan(20_000)
  })
})
