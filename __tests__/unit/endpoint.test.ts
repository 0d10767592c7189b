import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals'
import { contextFromInspect, resolveEndpoint, tlsFromEnv } from '../../src/engine/endpoint'

const CERTS = '/certs'
const DEFAULT_DIR = join(homedir(), '.docker')

describe('tlsFromEnv: the docker CLI reading of DOCKER_TLS_VERIFY, DOCKER_TLS and DOCKER_CERT_PATH', () => {
  test.each([
    ['no variables: plain TCP', 'tcp://h:2375', {}, undefined],
    ['DOCKER_TLS_VERIFY=1: verified', 'tcp://h:2376', { DOCKER_TLS_VERIFY: '1' }, { dir: DEFAULT_DIR, verify: true }],
    [
      'DOCKER_TLS_VERIFY=0 still verifies: any non-empty value does',
      'tcp://h',
      { DOCKER_TLS_VERIFY: '0' },
      { dir: DEFAULT_DIR, verify: true }
    ],
    [
      'DOCKER_TLS_VERIFY=false still verifies',
      'tcp://h',
      { DOCKER_TLS_VERIFY: 'false' },
      { dir: DEFAULT_DIR, verify: true }
    ],
    ['DOCKER_TLS_VERIFY empty: as unset', 'tcp://h', { DOCKER_TLS_VERIFY: '' }, undefined],
    ['DOCKER_TLS alone: TLS without verification', 'tcp://h', { DOCKER_TLS: '1' }, { dir: DEFAULT_DIR, verify: false }],
    [
      'DOCKER_TLS with DOCKER_TLS_VERIFY: verified',
      'tcp://h',
      { DOCKER_TLS: '1', DOCKER_TLS_VERIFY: '1' },
      { dir: DEFAULT_DIR, verify: true }
    ],
    ['DOCKER_CERT_PATH alone turns nothing on', 'tcp://h', { DOCKER_CERT_PATH: CERTS }, undefined],
    ['https:// asks for verified TLS', 'https://h', {}, { dir: DEFAULT_DIR, verify: true }],
    ['http:// is always plain', 'http://h', { DOCKER_TLS_VERIFY: '1' }, undefined],
    ['a unix socket carries no TLS', 'unix:///s', { DOCKER_TLS_VERIFY: '1' }, undefined],
    ['ssh carries no TLS (dockerode would make it https)', 'ssh://u@h', { DOCKER_TLS_VERIFY: '1' }, undefined]
  ])('%s', (_, host, env, expected) => {
    const tls = tlsFromEnv(host, env)
    expect(tls && { dir: tls.dir, verify: tls.verify }).toEqual(expected)
  })

  test('files come from DOCKER_CERT_PATH, else DOCKER_CONFIG, else ~/.docker; ca.pem is then required', () => {
    expect(tlsFromEnv('tcp://h', { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: CERTS, DOCKER_CONFIG: '/cfg' })).toEqual({
      dir: CERTS,
      verify: true,
      caRequired: true,
      source: 'DOCKER_CERT_PATH'
    })
    expect(tlsFromEnv('tcp://h', { DOCKER_TLS_VERIFY: '1', DOCKER_CONFIG: '/cfg' })?.dir).toBe('/cfg')
  })
})

function inspected(fields: {
  name?: string
  host?: string
  skip?: boolean
  material?: string[]
  tlsPath?: string
}): string {
  return JSON.stringify({
    Name: fields.name ?? 'remote',
    Metadata: {},
    Endpoints: { docker: { Host: fields.host ?? 'tcp://10.0.0.1:2376', SkipTLSVerify: fields.skip ?? false } },
    TLSMaterial: fields.material ? { docker: fields.material } : {},
    Storage: { MetadataPath: '/cfg/contexts/meta/abc', TLSPath: fields.tlsPath ?? '/cfg/contexts/tls/abc' }
  })
}

describe('contextFromInspect: the active context as `docker context inspect` shows it', () => {
  test('TLS files stored with the context: verified TLS from its docker directory, CA optional', () => {
    expect(contextFromInspect(inspected({ material: ['ca.pem', 'cert.pem', 'key.pem'] }), {})).toEqual({
      host: 'tcp://10.0.0.1:2376',
      tls: { dir: '/cfg/contexts/tls/abc/docker', verify: true, caRequired: false, source: 'docker context "remote"' }
    })
  })

  test('skip-tls-verify without files: TLS without verification', () => {
    expect(contextFromInspect(inspected({ skip: true }), {})?.tls?.verify).toBe(false)
  })

  test('neither files nor skip-tls-verify: plain, whatever the TLS variables say', () => {
    expect(contextFromInspect(inspected({}), { DOCKER_TLS_VERIFY: '1' })).toEqual({ host: 'tcp://10.0.0.1:2376' })
  })

  test('the default context follows the TLS variables, as the CLI does', () => {
    const json = inspected({ name: 'default', host: 'tcp://10.0.0.1:2376' })
    expect(contextFromInspect(json, { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: CERTS })?.tls?.dir).toBe(CERTS)
  })

  test('a unix socket or ssh context has no TLS', () => {
    expect(contextFromInspect(inspected({ host: 'unix:///s', material: ['ca.pem'] }), {})).toEqual({
      host: 'unix:///s'
    })
    expect(contextFromInspect(inspected({ host: 'ssh://u@h', material: ['ca.pem'] }), {})).toEqual({
      host: 'ssh://u@h'
    })
  })

  test('no endpoint or no JSON: no context', () => {
    expect(contextFromInspect('', {})).toBeUndefined()
    expect(contextFromInspect(JSON.stringify({ Name: 'x', Endpoints: {} }), {})).toBeUndefined()
  })
})

// The docker CLI is started for the context only when one other than the default is active: a
// fake `docker` first on PATH records whether it ran.
describe('resolveEndpoint: the docker CLI is asked only when a context other than the default is active', () => {
  const FAKE_HOST = 'unix:///from-the-fake-cli.sock'
  let dir = ''
  let path: string | undefined

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dirb-context-'))
    await mkdir(join(dir, 'bin'))
    const script = `#!/bin/sh\necho "$@" >> '${dir}/calls'\necho '{"Name":"other","Endpoints":{"docker":{"Host":"${FAKE_HOST}"}}}'\n`
    await writeFile(join(dir, 'bin', 'docker'), script, { mode: 0o755 })
    path = process.env.PATH
    process.env.PATH = `${join(dir, 'bin')}:${path ?? ''}`
  })

  afterEach(async () => {
    process.env.PATH = path
    await rm(dir, { recursive: true, force: true })
  })

  const calls = async (): Promise<string[]> =>
    (await readFile(join(dir, 'calls'), 'utf8').catch(() => '')).split('\n').filter(Boolean)
  const config = (text: string): Promise<void> => writeFile(join(dir, 'config.json'), text)

  test.each([
    ['no config file', undefined, {}],
    ['a config file without currentContext', '{"auths":{}}', {}],
    ['currentContext "default"', '{"currentContext":"default"}', {}],
    ['DOCKER_CONTEXT=default over a config naming another', '{"currentContext":"other"}', { DOCKER_CONTEXT: 'default' }]
  ])('%s: the default socket, without starting the CLI', async (_, text, extra) => {
    if (text !== undefined) await config(text)
    expect(await resolveEndpoint('', { DOCKER_CONFIG: dir, ...extra })).toEqual({ host: 'unix:///var/run/docker.sock' })
    expect(await calls()).toEqual([])
  })

  test.each([
    ['currentContext "other"', '{"currentContext":"other"}', {}],
    ['DOCKER_CONTEXT=other', undefined, { DOCKER_CONTEXT: 'other' }],
    ['a config file that is not JSON, for the CLI to judge', '{"currentContext":', {}]
  ])('%s: the CLI is asked', async (_, text, extra) => {
    if (text !== undefined) await config(text)
    expect(await resolveEndpoint('', { DOCKER_CONFIG: dir, ...extra })).toEqual({ host: FAKE_HOST })
    expect(await calls()).toEqual(['context inspect --format {{json .}}'])
  })

  test('DOCKER_HOST or the input: neither the config file nor the CLI', async () => {
    await config('{"currentContext":"other"}')
    expect(await resolveEndpoint('', { DOCKER_CONFIG: dir, DOCKER_HOST: 'unix:///h.sock' })).toEqual({
      host: 'unix:///h.sock',
      tls: undefined
    })
    expect(await resolveEndpoint('unix:///i.sock', { DOCKER_CONFIG: dir })).toEqual({
      host: 'unix:///i.sock',
      tls: undefined
    })
    expect(await calls()).toEqual([])
  })
})
