import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeEach, describe, expect, test } from '@jest/globals'
import { succeeded } from './checks'
import { REPO_ROOT, bed, runAction } from './harness'

const { scene } = bed()

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

// ncc copied ssh2's optional add-ons, compiled for the build machine's Node, into dist/, and
// ssh2 loaded them into every run; some runs that deleted images ended in SIGSEGV at exit
// (bench/README.md). The build drops them (scripts/drop-native-addons.mjs), and ssh2 itself is
// loaded only for ssh:// engines (src/engine/deferred/).
describe('the bundle carries no native code', () => {
  test('dist/ holds no native add-on', async () => {
    const files = await readdir(join(REPO_ROOT, 'dist'), { recursive: true })
    expect(files.filter(file => file.endsWith('.node'))).toEqual([])
  })

  test('a run that deletes images loads no native add-on', async () => {
    await scene.many('native', 5)
    const dir = await mkdtemp(join(tmpdir(), 'dirb-native-'))
    try {
      const out = join(dir, 'mapped.json')
      const probe = join(REPO_ROOT, '__tests__', 'integration', 'native-probe.cjs')
      const run = await runAction(
        { refs: 'native:*' },
        { env: { NODE_OPTIONS: `--require=${probe}`, NATIVE_PROBE_OUT: out } }
      )
      expect(succeeded(run).deleted).toHaveLength(5)
      expect(JSON.parse(await readFile(out, 'utf8'))).toEqual([])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

// node compiles every byte of the bundle at each start-up; ssh2 was about half of it, for ssh://
// engines only (scripts/build.sh, src/engine/deferred/ssh2.js), and protobufjs is BuildKit's, never used.
// @actions/http-client (OIDC tokens) and readable-stream are left out too (src/engine/deferred/).
describe('the bundle node compiles at every start carries neither ssh2, protobufjs, http-client nor readable-stream', () => {
  const SSH2 = 'SSH-2.0-ssh2js'
  const PROTOBUFJS = 'protobuf'
  /** http-client's table of status codes, and readable-stream's switch to Node's own streams. */
  const HTTP_CLIENT = '"BadGateway"'
  const READABLE_STREAM = 'READABLE_STREAM'

  test.each([
    ['the action', 'dist'],
    ['the command line', join('dist', 'cli')]
  ])('%s: ssh2 is bundled on its own beside it, in ssh2/index.js', async (_, dir) => {
    const main = await readFile(join(REPO_ROOT, dir, 'index.js'), 'utf8')
    for (const left of [SSH2, PROTOBUFJS, HTTP_CLIENT, READABLE_STREAM]) expect(main).not.toContain(left)
    expect(main).toContain('("./ssh2/index.js")')
    expect(await readFile(join(REPO_ROOT, dir, 'ssh2', 'index.js'), 'utf8')).toContain(SSH2)
  })
})

// A run on a unix socket needs dockerode's HTTP over the socket and @actions/core's workflow
// commands. ssh2 (ssh:// only) is loaded on first use (src/engine/deferred/); gRPC (BuildKit sessions)
// and @actions/http-client (OIDC tokens), with the undici it imports, are left out: target (3)
// of docs/speed.md, start-up time. Each of them requires, as it loads, Node built-ins that nothing
// else in the bundle asks for.
const LOADED_ONLY_BY: Record<string, string> = {
  dns: 'ssh2 and @grpc/grpc-js',
  http2: '@grpc/grpc-js and undici',
  worker_threads: 'undici',
  diagnostics_channel: 'undici',
  perf_hooks: 'undici'
}

describe('a plain run loads only what it uses', () => {
  test('a run with nothing to do on a unix socket loads neither ssh2, gRPC nor undici', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dirb-builtins-'))
    try {
      const out = join(dir, 'builtins.json')
      const probe = join(REPO_ROOT, '__tests__', 'integration', 'builtins-probe.cjs')
      const run = await runAction({}, { env: { NODE_OPTIONS: `--require=${probe}`, BUILTINS_PROBE_OUT: out } })
      expect(succeeded(run).deleted).toEqual([])
      const required = JSON.parse(await readFile(out, 'utf8')) as string[]
      // The probe saw the bundle load: dockerode's HTTP client is there.
      expect(required).toContain('http')
      expect(required.filter(name => name in LOADED_ONLY_BY).map(name => `${name} (${LOADED_ONLY_BY[name]})`)).toEqual(
        []
      )
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
