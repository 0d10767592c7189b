import { Writable } from 'node:stream'
import { describe, expect, test } from '@jest/globals'
import { run } from '../../src/cli/run'
import { FakeEngine } from '../fakes/engine'

/** The command line in this process, against an engine in memory: its exit code and what it wrote. */

const MB = 1_000_000

interface CliRun {
  code: number
  stdout: string
  stderr: string
}

async function cli(engine: FakeEngine, argv: string[]): Promise<CliRun> {
  const written = { stdout: '', stderr: '' }
  const stream = (name: keyof typeof written): Writable =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        written[name] += chunk.toString('utf8')
        done()
      }
    })
  const code = await run(argv, { stdout: stream('stdout'), stderr: stream('stderr') }, engine.open)
  return { code, ...written }
}

describe('the command line', () => {
  test('--help prints the usage on stdout and exits 0 without reaching the engine', async () => {
    const engine = new FakeEngine()
    const out = await cli(engine, ['--help'])
    expect(out).toMatchObject({ code: 0, stderr: '' })
    expect(out.stdout).toMatch(/^Usage: docker-image-reclaim \[options\]/)
    expect(engine.opened).toBe(0)
  })

  test('the text report: the total, then one line per image, then storage; exit 0', async () => {
    const engine = new FakeEngine()
    const id = engine.build('app:1', { bytes: 2 * MB })
    engine.build('keep:1', { bytes: MB })
    const out = await cli(engine, ['--refs', 'app:1'])
    expect(out.code).toBe(0)
    expect(out.stdout.split('\n')).toEqual([
      `Reclaimed 2MB (${2 * MB} bytes) on unix:///fake/docker.sock: 1 deleted, 1 untagged, 0 skipped`,
      expect.stringMatching(new RegExp(`^  deleted +app:1 +${id.slice(7, 19)} +just now +2MB$`)),
      'Image storage: 3MB before, 1MB after.',
      ''
    ])
    expect(engine.tagsNow()).toEqual(['keep:1'])
  })

  test('--json gives the outputs in camelCase, and they match the engine', async () => {
    const engine = new FakeEngine()
    const id = engine.build('cli:1', { bytes: 2 * MB })
    engine.build(['cli:2', 'cli:3'], { bytes: MB })
    const before = engine.storedBytes()
    const out = await cli(engine, ['--refs', 'cli:1', '--refs', 'cli:2', '--json'])
    expect(out.code).toBe(0)
    expect(JSON.parse(out.stdout)).toEqual({
      reclaimedBytes: 2 * MB,
      reclaimed: '2MB',
      buildCacheReclaimedBytes: 0,
      deleted: [id],
      untagged: ['cli:1', 'cli:2'],
      skipped: [],
      dryRun: false,
      endpoint: 'unix:///fake/docker.sock',
      storageBefore: before,
      storageAfter: engine.storedBytes()
    })
    expect(engine.tagsNow()).toEqual(['cli:3'])
  })

  test('--dry-run changes nothing and says what would go', async () => {
    const engine = new FakeEngine()
    engine.dangling('old')
    const ids = engine.idsNow()
    const out = await cli(engine, ['--dry-run'])
    expect(out.code).toBe(0)
    expect(out.stdout).toMatch(/^Would reclaim 100kB \(100000 bytes\)/)
    expect(engine.idsNow()).toEqual(ids)
  })

  test('a missing ref is a warning on stderr; with --fail-on-error the exit is 1, after doing the rest', async () => {
    const engine = new FakeEngine()
    engine.build('human:1')
    engine.build('human:2')
    const lenient = await cli(engine, ['--refs', 'human:1', '--refs', 'ghost:1'])
    expect(lenient.code).toBe(0)
    expect(lenient.stderr).toBe('warning: ghost:1: not-found: No such image: ghost:1\n')
    const strict = await cli(engine, ['--refs', 'human:2', '--refs', 'ghost:1', '--fail-on-error'])
    expect(strict.code).toBe(1)
    expect(strict.stdout).toMatch(/not-found\s+ghost:1/)
    expect(engine.tagsNow()).toEqual([])
  })

  test('--verbose logs each phase on stderr, leaving stdout to the report', async () => {
    const engine = new FakeEngine()
    const out = await cli(engine, ['--verbose', '--json'])
    expect(out.stderr).toContain('== Planning\n')
    expect(JSON.parse(out.stdout)).toMatchObject({ reclaimedBytes: 0 })
  })

  test.each([
    [['--bogus'], "docker-image-reclaim: Unknown option '--bogus'. See --help."],
    [['--prune'], "docker-image-reclaim: Option '--prune <value>' argument missing. See --help."],
    [
      ['--keep-duration', 'banana'],
      'docker-image-reclaim: --keep-duration must be a duration such as 90m, 24h, 1h30m, 7d or 2w, not "banana". See --help.'
    ],
    [
      ['--filter', 'colour=red'],
      'docker-image-reclaim: --filter has an invalid filter "colour=red": the key must be one of dangling, label, label!, before, since, reference, until. See --help.'
    ]
  ])('%j exits 2 with one sentence, before reaching the engine', async (argv, sentence) => {
    const engine = new FakeEngine()
    engine.dangling('untouched')
    const out = await cli(engine, argv)
    expect(out).toEqual({ code: 2, stdout: '', stderr: `${sentence}\n` })
    expect(engine.opened).toBe(0)
  })

  test('an unreachable engine exits 1 with a sentence naming it', async () => {
    const engine = new FakeEngine()
    engine.goAway()
    const out = await cli(engine, [])
    expect(out).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'docker-image-reclaim: Cannot reach the Docker engine at unix:///fake/docker.sock: connect ENOENT /fake/docker.sock.\n'
    })
  })
})

describe('the engine checks what the flags name', () => {
  test.each([
    ['before', 'ghost:1'],
    ['since', 'ghost:1']
  ])('--filter %s=%s naming no image exits 2 naming --filter, and removes nothing', async (key, ref) => {
    const engine = new FakeEngine()
    engine.dangling('untouched')
    const ids = engine.idsNow()
    const out = await cli(engine, ['--filter', `${key}=${ref}`, '--prune', 'all'])
    expect(out).toEqual({
      code: 2,
      stdout: '',
      stderr: `docker-image-reclaim: --filter has ${key}=${ref}, which names no image on the engine (No such image: ${ref}). See --help.\n`
    })
    expect(engine.idsNow()).toEqual(ids)
  })
})
