import { beforeEach, describe, expect, test } from '@jest/globals'
import { succeeded } from './checks'
import { bed, proxiesPerTest, runAction, type ActionRun } from './harness'

const { scene } = bed()
const SECRET = 's3cr3t-Pa55'
const proxy = proxiesPerTest()

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

/** Everything a run shows anyone, but the mask command that tells the runner to hide the secret. */
function shownText(run: ActionRun): string {
  const log = `${run.stdout}\n${run.stderr}`
    .split('\n')
    .filter(line => !line.startsWith('::add-mask::'))
    .join('\n')
  return [log, run.summary, ...Object.values(run.outputs)].join('\n')
}

describe('credentials in an endpoint are masked and never shown', () => {
  test('a password in docker-host is masked at once, and shown as *** when the engine answers', async () => {
    await scene.dangling('secretive')
    const { host: plain } = await proxy(0, () => 'forward')
    const host = plain.replace('tcp://', `tcp://ci:${SECRET}@`)
    const run = await runAction({ 'docker-host': host })
    expect(succeeded(run).deleted).toHaveLength(1)
    expect(run.stdout).toContain(`::add-mask::${SECRET}`)
    expect(shownText(run)).not.toContain(SECRET)
    expect(run.stdout).toContain(`Engine: ${plain.replace('tcp://', 'tcp://ci:***@')}`)
  })

  test('and when it does not: the error names the endpoint without the password', async () => {
    const run = await runAction({}, { env: { DOCKER_HOST: `tcp://ci:${SECRET}@127.0.0.1:1` } })
    expect(run.code).not.toBe(0)
    expect(run.stdout).toContain(`::add-mask::${SECRET}`)
    expect(run.stdout).toContain('::error::Cannot reach the Docker engine at tcp://ci:***@127.0.0.1:1')
    expect(shownText(run)).not.toContain(SECRET)
  })
})
