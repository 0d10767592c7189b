/**
 * A client nobody here wrote: GitHub's own @github/local-action runs the TypeScript source
 * (not dist/) with its stubs of @actions/core, against the bed's engine. What it showed
 * about the real runner is in CONTRIBUTING.md ("Running the action with local-action"):
 * - it needs an entry that exports run(); src/action/index.ts chooses main or post by itself, so the
 *   tests hand it two small adapters, written under .testbed/ (ignored by git);
 * - outputs go to its log as ::set-output lines, not to GITHUB_OUTPUT;
 * - core.setFailed does not change its exit code: a failed step exits 0;
 * - saveState/getState stay in its memory: main and post run in one process, back to back.
 */
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import { succeeded } from './checks'
import { bed, REPO_ROOT, runAction } from './harness'

const { scene, host, dataRoot, engine } = bed()
const MB = 1_000_000
const BIN = join(REPO_ROOT, 'node_modules', '@github', 'local-action', 'bin', 'local-action.js')
const RUN_TIMEOUT_MS = 90_000

interface LocalRun {
  code: number
  log: string
  outputs: Record<string, string>
  summary: string
}

let dir = ''

beforeAll(async () => {
  await mkdir(join(REPO_ROOT, '.testbed'), { recursive: true })
  // Under the repository: local-action looks for package.json above the entry point.
  dir = await mkdtemp(join(REPO_ROOT, '.testbed', 'local-action-'))
  const src = (file: string): string => JSON.stringify(join(REPO_ROOT, 'src', file))
  await writeFile(
    join(dir, 'main.ts'),
    `import { main } from ${src('action/main')}\nimport { markMainStarted } from ${src('action/state')}\n\n` +
      `// What src/action/index.ts does when it is not the post step.\nexport async function run(): Promise<void> {\n  markMainStarted()\n  await main()\n}\n`
  )
  // The job's own steps run between main and post on a runner; here the post adapter plays them.
  await writeFile(
    join(dir, 'post.ts'),
    `import { post } from ${src('action/post')}\nimport { Scene } from ${JSON.stringify(join(REPO_ROOT, 'testbed', 'scene'))}\n\n` +
      `export async function run(): Promise<void> {\n` +
      `  await new Scene({ host: ${JSON.stringify(host)}, dataRoot: ${JSON.stringify(dataRoot)} }).build('job-added:1', { bytes: ${MB} })\n` +
      `  await post()\n}\n`
  )
})

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

/** `local-action run <repo> <entry> <.env> [--post <entry>]`, inputs in the .env as the runner would set them. */
async function localAction(inputs: Record<string, string>, opts: { post?: boolean } = {}): Promise<LocalRun> {
  const summaryFile = join(dir, 'summary.md')
  const envFile = join(dir, '.env')
  await writeFile(summaryFile, '')
  const vars = {
    ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v])),
    DOCKER_HOST: host,
    GITHUB_STEP_SUMMARY: summaryFile
  }
  await writeFile(
    envFile,
    Object.entries(vars)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join('\n') + '\n'
  )
  const args = [BIN, 'run', REPO_ROOT, relative(REPO_ROOT, join(dir, 'main.ts')), envFile]
  if (opts.post) args.push('--post', relative(REPO_ROOT, join(dir, 'post.ts')))
  // Nothing of this process's own step (inputs, command files, state, engine, jest's VM modules) leaks in.
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env))
    if (!/^(INPUT_|GITHUB_|STATE_|DOCKER_|NODE_OPTIONS$)/.test(k)) env[k] = v
  Object.assign(env, { FORCE_COLOR: '0', NO_COLOR: '1' })
  const { code, log } = await new Promise<{ code: number; log: string }>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')))
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`local-action still running after ${RUN_TIMEOUT_MS} ms:\n${out}`))
    }, RUN_TIMEOUT_MS)
    child.on('error', reject)
    child.on('close', status => {
      clearTimeout(timer)
      resolve({ code: status ?? 1, log: out })
    })
  })
  const outputs = Object.fromEntries(
    [...log.matchAll(/^::set-output name=([^:]+)::(.*)$/gm)].map(([, name, value]) => [name, value])
  )
  return { code, log, outputs, summary: await readFile(summaryFile, 'utf8') }
}

/** Ages move on between two runs; the rest of a summary must not. */
const withoutAges = (summary: string): string => summary.replace(/<td>\d+&nbsp;\w+<\/td>/g, '<td>AGE</td>')

// A check of another client, not of an engine: one flavour is enough, and each run costs ~20 s.
const onOneEngine = engine.flavour === 'docker20' ? describe : describe.skip

onOneEngine('@github/local-action runs the source against the bed', () => {
  test('it removes the image and reports the outputs and the summary the runner would get', async () => {
    const id = await scene.build('local:1', { bytes: 1_230_000 })
    const run = await localAction({ refs: 'local:1 missing:1' })
    expect(run.code).toBe(0)
    expect(run.outputs).toEqual({
      'reclaimed-bytes': '1230000',
      reclaimed: '1.23MB',
      // No build-cache input: the cache's share is 0, as a number, so that workflows can add it.
      'build-cache-reclaimed-bytes': '0',
      deleted: JSON.stringify([id]),
      'deleted-count': '1',
      untagged: JSON.stringify(['local:1']),
      skipped: JSON.stringify([{ ref: 'missing:1', id: '', reason: 'not-found', message: 'No such image: missing:1' }]),
      'storage-before': expect.stringMatching(/^\d+$/),
      'storage-after': expect.stringMatching(/^\d+$/),
      'target-met': ''
    })
    expect(Number(run.outputs['storage-before']) - Number(run.outputs['storage-after'])).toBe(1_230_000)
    expect(await scene.exists('local:1')).toBe(false)
    expect(run.summary.split('\n')[0]).toBe('<h2>Docker images: reclaimed 1.23MB</h2>')
    expect(run.summary).toMatch(
      /<tr><td>local:1<\/td><td><code>[0-9a-f]{12}<\/code><\/td>.*<td align="right">1.23MB<\/td><td>Deleted<\/td><\/tr>/
    )
    expect(run.log).toContain('::warning::missing:1: not-found: No such image: missing:1')
  })

  test('its stubbed toolkit gives the same outputs and summary as the bundle on the runner', async () => {
    await scene.build(['twin:1', 'twin:2'], { bytes: MB })
    await scene.build('solo:1', { bytes: 2 * MB })
    await scene.dangling('scrap')
    const inputs = { refs: 'twin:1 solo:1 gone:1', prune: 'dangling', 'dry-run': 'true' }
    const local = await localAction(inputs)
    const bundle = await runAction(inputs)
    succeeded(bundle)
    expect(local.outputs).toEqual(bundle.outputs)
    expect(Number(local.outputs['reclaimed-bytes'])).toBeGreaterThan(2 * MB)
    expect(withoutAges(local.summary)).toBe(withoutAges(bundle.summary))
  })

  test('unlike the runner, a step that fails still exits 0: only its log says so', async () => {
    const inputs = { refs: 'missing:1', 'fail-on-error': 'true' }
    const bundle = await runAction(inputs)
    expect(bundle.code).toBe(1)
    const local = await localAction(inputs)
    expect(local.code).toBe(0)
    expect(local.log).toMatch(/^::error::1 of the named refs could not be removed \(missing:1\)/m)
    expect(local.outputs['deleted-count']).toBe('0')
  })

  test('scope: job carries the record from main to post in its memory, and the post removes what the job added', async () => {
    await scene.build('before-job:1', { bytes: MB })
    const run = await localAction({ scope: 'job' }, { post: true })
    expect(run.code).toBe(0)
    expect(run.log).toContain('the post step removes only what the job adds')
    expect(await scene.exists('before-job:1')).toBe(true)
    expect(await scene.exists('job-added:1')).toBe(false)
    expect(run.outputs['reclaimed-bytes']).toBe(String(MB))
    expect(run.outputs.untagged).toBe(JSON.stringify(['job-added:1']))
    expect(run.summary.split('\n')[0]).toBe('<h2>Docker images: reclaimed 1MB from what this job added</h2>')
  })
})
