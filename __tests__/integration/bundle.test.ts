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
// loaded only for ssh:// engines (src/deferred/).
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
      const run = await runAction({ refs: 'native:*' }, { env: { NODE_OPTIONS: `--require=${probe}`, NATIVE_PROBE_OUT: out } })
      expect(succeeded(run).deleted).toHaveLength(5)
      expect(JSON.parse(await readFile(out, 'utf8'))).toEqual([])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
