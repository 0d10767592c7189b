import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeEach, describe, expect, test } from '@jest/globals'
import { succeeded } from './checks'
import { bed, runAction } from './harness'

const { scene } = bed()

beforeEach(async () => {
  await scene.wipe({ keepBusybox: true })
})

describe('logs, summary and endpoint', () => {
  test('logs are grouped by phase, name each removal, and show progress on long runs', async () => {
    await scene.many('bulk', 60)
    const run = await runAction({ refs: 'bulk:*' })
    expect(succeeded(run).deleted).toHaveLength(60)
    expect(run.stdout).toContain('::group::Planning')
    expect(run.stdout).toContain('::group::Removing')
    expect(run.stdout).toContain('Untagged: bulk:7\n')
    // A 1,000-byte layer: 1kB on overlay2, its blob and snapshot on containerd, its tar on Podman.
    const freed = bed().engine.imageStore === 'overlay2' ? '1kB' : '[\\d.]+kB'
    expect(run.stdout).toMatch(new RegExp(`Deleted: sha256:[0-9a-f]{64} \\(for bulk:7; ${freed} freed\\)`))
    expect(run.stdout).toContain('deleted 25/60')
    expect(run.stdout).toContain('deleted 50/60')
  })

  test('summary: false writes no job summary', async () => {
    await scene.dangling('quiet')
    const run = await runAction({ summary: 'false' })
    expect(succeeded(run).deleted).toHaveLength(1)
    expect(run.summary).toBe('')
  })

  test('without docker-host and DOCKER_HOST, the active docker context names the engine', async () => {
    const config = await mkdtemp(join(tmpdir(), 'dirb-ctx-'))
    try {
      const docker = (args: string[]) => promisify(execFile)('/usr/bin/docker', ['--config', config, ...args])
      await docker(['context', 'create', 'bed', '--docker', `host=${bed().host}`])
      await docker(['context', 'use', 'bed'])
      await scene.dangling('ctx')
      const run = await runAction({ 'dry-run': 'true' }, { env: { DOCKER_HOST: '', DOCKER_CONFIG: config } })
      expect(run.stdout).toContain(`Engine: ${bed().host} `)
      expect(succeeded(run).deleted).toHaveLength(1)
    } finally {
      await rm(config, { recursive: true, force: true })
    }
  })
})
