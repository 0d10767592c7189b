import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeEach, describe, expect, test } from '@jest/globals'
import { parse } from 'yaml'
import { formatBytes } from '../../src/common/units'
import { BUSYBOX } from '../../testbed/scene'
import { expectLayerBytes, expectReclaimed, idsOf, storage, tagsOf } from './checks'
import { bed, REPO_ROOT } from './harness'

const { scene } = bed()
const MB = 1_000_000
const CLI = join(REPO_ROOT, 'dist', 'cli', 'index.js')

interface CliRun {
  code: number
  stdout: string
  stderr: string
}

/** The bundled command line, with no DOCKER_HOST of its own: the engine comes from --docker-host. */
function cli(args: string[]): Promise<CliRun> {
  const env = { ...process.env }
  delete env.DOCKER_HOST
  return new Promise(resolve => {
    execFile(process.execPath, [CLI, ...args], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr })
    })
  })
}

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

describe('the command line', () => {
  test('--help lists a flag for every input that makes sense outside a workflow', async () => {
    const run = await cli(['--help'])
    expect(run.code).toBe(0)
    const action = parse(readFileSync(join(REPO_ROOT, 'action.yml'), 'utf8')) as { inputs: Record<string, unknown> }
    const mirrored = Object.keys(action.inputs).filter(name => !['summary', 'scope', 'job-timeout'].includes(name))
    for (const input of mirrored) expect(run.stdout).toContain(`--${input === 'filters' ? 'filter' : input} `)
    expect(run.stdout).toContain('--json')
  })

  test.each([
    [['--bogus'], "Unknown option '--bogus'"],
    [['--keep-duration', 'banana'], '--keep-duration must be a duration'],
    [['--refs', '../containers/x'], '--refs has "../containers/x"'],
    [['--filter', 'colour=red'], '--filter has an invalid filter "colour=red"'],
    [['--prune'], "Option '--prune <value>' argument missing"]
  ])('%j exits 2 with one sentence and removes nothing', async (args, sentence) => {
    await scene.dangling('untouched')
    const ids = await idsOf(scene)
    const run = await cli(['--docker-host', bed().host, ...args])
    expect(run.code).toBe(2)
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringContaining(sentence)])
    expect(await idsOf(scene)).toEqual(ids)
  })

  test('--json gives a result scripts can read, and it matches the engine', async () => {
    const id = await scene.build('cli:1', { bytes: 2 * MB })
    await scene.build(['cli:2', 'cli:3'], { bytes: MB })
    const before = await storage(scene)
    const run = await cli(['--refs', 'cli:1', '--refs', 'cli:2', '--json', '--docker-host', bed().host])
    expect(run.code).toBe(0)
    const result = JSON.parse(run.stdout) as {
      reclaimedBytes: number
      reclaimed: string
      deleted: string[]
      untagged: string[]
    }
    expect(result).toMatchObject({
      reclaimed: formatBytes(result.reclaimedBytes),
      deleted: [id],
      untagged: ['cli:1', 'cli:2']
    })
    expectLayerBytes(result.reclaimedBytes, 2 * MB)
    expect(await tagsOf(scene)).toEqual(['cli:3', BUSYBOX].sort())
    expectReclaimed(result.reclaimedBytes, before, await storage(scene), 1)
  })

  test('the human report names each outcome; --fail-on-error exits 1 for a missing ref after doing the rest', async () => {
    await scene.build('human:1', { bytes: MB })
    const run = await cli(['--refs', 'human:1', '--refs', 'ghost:1', '--fail-on-error', '--docker-host', bed().host])
    expect(run.code).toBe(1)
    const bytes = Number(/^Reclaimed \S+ \((\d+) bytes\)/.exec(run.stdout)?.[1])
    expectLayerBytes(bytes, MB)
    expect(run.stdout).toMatch(new RegExp(`^Reclaimed ${formatBytes(bytes)} \\(${bytes} bytes\\)`))
    expect(run.stdout).toMatch(/deleted\s+human:1/)
    expect(run.stdout).toMatch(/not-found\s+ghost:1/)
    expect(run.stderr).toContain('warning: ghost:1: not-found')
    expect(await tagsOf(scene)).toEqual([BUSYBOX])
  })

  test('an unreachable engine exits 1 with a sentence naming it', async () => {
    const run = await cli(['--docker-host', 'unix:///nonexistent/docker.sock'])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('Cannot reach the Docker engine at unix:///nonexistent/docker.sock')
  })
})
