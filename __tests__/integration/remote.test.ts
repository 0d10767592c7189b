import { execFile } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { connect, createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import { removeRoot } from '../../testbed/bed'
import { makePki, type Pki } from '../../testbed/certs'
import { flavourFromEnv, makeRoot, startEngine, type Engine } from '../../testbed/engine'
import { startProxy, type Proxy } from '../../testbed/proxy'
import { runBundle, type ActionRun } from '../../testbed/runner'
import { Scene } from '../../testbed/scene'
import { startSshd, type SshEndpoint } from '../../testbed/sshd'
import { succeeded } from './checks'

/**
 * One more private dockerd for this file, listening on its unix socket and on a loopback TCP port
 * with --tlsverify and a CA, server and client certificates made here with openssl, and a private
 * sshd on another loopback port in front of it. It runs with the overlay2 Docker flavours only
 * (docker20, docker26, docker28; jest.config.mjs): what it tests is the connection, whatever the
 * image store.
 */
let engine: Engine
let scene: Scene
let tlsHost: string
let root: string
let good: Pki
let wrong: Pki
let plain: Proxy
let ssh: SshEndpoint
const pemFiles: string[] = []

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'dirb-remote-'))
  good = await makePki(join(root, 'pki'), 'good')
  wrong = await makePki(join(root, 'pki'), 'wrong')
  pemFiles.push(good.ca, good.client.cert, good.client.key, good.server.cert, good.server.key, wrong.ca)
  engine = await startEngine(await makeRoot(), flavourFromEnv(), { tls: { ca: good.ca, ...good.server } })
  tlsHost = engine.tlsHost as string
  scene = new Scene({ host: engine.host, dataRoot: engine.dataRoot, info: engine.info })
  plain = await startProxy(engine.socket, 0, () => 'forward')
  ssh = await startSshd(join(root, 'ssh'), engine.socket)
})

beforeEach(async () => {
  await scene.wipe()
})

afterAll(async () => {
  await ssh?.stop()
  await plain?.close()
  await engine?.stop()
  if (engine) await removeRoot(engine.root)
  await rm(root, { recursive: true, force: true })
})

/** A DOCKER_CERT_PATH-style directory holding the files given as ca.pem, cert.pem and key.pem. */
async function certDir(name: string, files: { ca?: string; cert?: string; key?: string }): Promise<string> {
  const dir = join(root, 'certs', name)
  await mkdir(dir, { recursive: true })
  for (const [kind, path] of Object.entries(files)) if (path) await copyFile(path, join(dir, `${kind}.pem`))
  return dir
}

/** A loopback TCP relay to the TLS port that counts the connections made through it. */
async function countingRelay(port: string): Promise<{ host: string; connections: () => number; close: () => void }> {
  let count = 0
  const server = createServer(client => {
    count++
    const upstream = connect(Number(port), '127.0.0.1')
    client.pipe(upstream).pipe(client)
    const end = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end)
    upstream.on('error', end)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port: relayPort } = server.address() as AddressInfo
  return {
    host: `tcp://127.0.0.1:${relayPort}`,
    connections: () => count,
    close: () => void server.close()
  }
}

/** The runner's environment with nothing of this machine's Docker settings: each test names its own. */
const NO_DOCKER_ENV = {
  DOCKER_HOST: '',
  DOCKER_TLS_VERIFY: '',
  DOCKER_TLS: '',
  DOCKER_CERT_PATH: '',
  DOCKER_CONTEXT: '',
  DOCKER_CONFIG: ''
}

function run(inputs: Record<string, string>, env: Record<string, string>): Promise<ActionRun> {
  return runBundle({ summary: 'true', ...inputs }, { host: '', env: { ...NO_DOCKER_ENV, ...env } })
}

/** Every PEM body line (never a header) of the test's certificates and keys, none of which may ever be shown. */
async function expectNoPem(result: ActionRun): Promise<void> {
  const shown = [result.stdout, result.stderr, result.summary, ...Object.values(result.outputs)].join('\n')
  expect(shown).not.toContain('-----BEGIN')
  for (const file of pemFiles) {
    const body = (await readFile(file, 'utf8')).split('\n').filter(line => line && !line.startsWith('-----'))
    for (const line of body) expect(shown).not.toContain(line)
  }
}

function failure(result: ActionRun): string {
  expect(result.code).not.toBe(0)
  return result.stdout.split('\n').find(line => line.startsWith('::error::')) ?? ''
}

describe('tcp:// with TLS from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH', () => {
  test('removes the images on the TLS engine, and shows no certificate or key', async () => {
    const id = await scene.dangling('tls-ok')
    const dir = await certDir('good', { ca: good.ca, cert: good.client.cert, key: good.client.key })
    const result = await run({ 'docker-host': tlsHost }, { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir })
    expect(succeeded(result).deleted).toEqual([id])
    expect(result.stdout).toContain(`Engine: ${tlsHost} `)
    expect(await scene.exists(id)).toBe(false)
    await expectNoPem(result)
  })

  test('requests share TLS connections instead of a handshake each', async () => {
    for (let i = 1; i <= 10; i++) await scene.build(`tls-shared:${i}`, { bytes: 1_000 })
    const relay = await countingRelay(new URL(tlsHost.replace('tcp:', 'http:')).port)
    try {
      const dir = await certDir('good', { ca: good.ca, cert: good.client.cert, key: good.client.key })
      const result = await run(
        { 'docker-host': relay.host, refs: 'tls-shared:*' },
        { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir }
      )
      expect(succeeded(result).deleted).toHaveLength(10)
      // Fifteen requests or more (/_ping, /info, the lists, disk usage, ten removals, a list and disk usage after),
      // over no more connections than were ever in flight at once: six removals, and two more.
      expect(relay.connections()).toBeLessThanOrEqual(8)
    } finally {
      relay.close()
    }
  })

  test('a CA that did not sign the engine certificate: certificate verify failed, naming the endpoint, and nothing removed', async () => {
    const id = await scene.dangling('tls-wrong-ca')
    const dir = await certDir('wrong-ca', { ca: wrong.ca, cert: good.client.cert, key: good.client.key })
    const result = await run({ 'docker-host': tlsHost }, { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir })
    expect(failure(result)).toBe(
      `::error::Cannot reach the Docker engine at ${tlsHost}: certificate verify failed: unable to verify the first certificate, checked against ca.pem in ${dir} (DOCKER_CERT_PATH).`
    )
    expect(await scene.exists(id)).toBe(true)
    await expectNoPem(result)
  })

  test('DOCKER_TLS_VERIFY=0 still verifies, as in the docker CLI, where any non-empty value does', async () => {
    const id = await scene.dangling('tls-verify-zero')
    const dir = await certDir('wrong-ca', { ca: wrong.ca, cert: good.client.cert, key: good.client.key })
    const result = await run({ 'docker-host': tlsHost }, { DOCKER_TLS_VERIFY: '0', DOCKER_CERT_PATH: dir })
    expect(failure(result)).toContain('certificate verify failed')
    expect(await scene.exists(id)).toBe(true)
  })

  test('DOCKER_TLS without DOCKER_TLS_VERIFY: TLS that does not check the engine certificate, with a warning', async () => {
    const id = await scene.dangling('tls-noverify')
    const dir = await certDir('wrong-ca', { ca: wrong.ca, cert: good.client.cert, key: good.client.key })
    const result = await run({ 'docker-host': tlsHost }, { DOCKER_TLS: '1', DOCKER_CERT_PATH: dir })
    expect(succeeded(result).deleted).toEqual([id])
    expect(result.stdout).toContain(
      `::warning::TLS to ${tlsHost} does not check the engine's certificate (DOCKER_TLS is set without DOCKER_TLS_VERIFY)`
    )
    await expectNoPem(result)
  })

  test('no ca.pem in DOCKER_CERT_PATH: one sentence naming the directory and the variable, and nothing removed', async () => {
    const id = await scene.dangling('tls-no-ca')
    const dir = await certDir('no-ca', { cert: good.client.cert, key: good.client.key })
    const result = await run({ 'docker-host': tlsHost }, { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir })
    expect(failure(result)).toBe(`::error::TLS to ${tlsHost} needs ca.pem, but ${dir} (DOCKER_CERT_PATH) has none.`)
    expect(await scene.exists(id)).toBe(true)
  })

  test('a key without its certificate is refused before any request', async () => {
    const dir = await certDir('half-pair', { ca: good.ca, key: good.client.key })
    const result = await run({ 'docker-host': tlsHost }, { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir })
    expect(failure(result)).toBe(
      `::error::TLS to ${tlsHost}: ${dir} (DOCKER_CERT_PATH) holds key.pem but no cert.pem; a client certificate needs both.`
    )
    await expectNoPem(result)
  })

  test('no client certificate where the engine demands one: the refused handshake is named, and nothing removed', async () => {
    const id = await scene.dangling('tls-no-client')
    const dir = await certDir('ca-only', { ca: good.ca })
    const result = await run({ 'docker-host': tlsHost }, { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir })
    expect(failure(result)).toContain(
      `::error::Cannot reach the Docker engine at ${tlsHost}: the engine refused the TLS handshake`
    )
    expect(await scene.exists(id)).toBe(true)
  })

  test('plain HTTP to the TLS port says that the endpoint speaks TLS', async () => {
    const result = await run({ 'docker-host': tlsHost }, {})
    expect(failure(result)).toContain(
      `::error::Cannot reach the Docker engine at ${tlsHost}: the endpoint speaks TLS: set DOCKER_TLS_VERIFY=1`
    )
  })
})

describe('tcp:// without TLS, and the input over DOCKER_HOST', () => {
  test('docker-host: tcp://127.0.0.1:<port> with no TLS variables talks plain HTTP', async () => {
    const id = await scene.dangling('plain')
    const result = await run({ 'docker-host': plain.host }, {})
    expect(succeeded(result).deleted).toEqual([id])
    expect(result.stdout).toContain(`Engine: ${plain.host} `)
  })

  test('TLS variables asked for a plain endpoint: no TLS answered there', async () => {
    const dir = await certDir('good', { ca: good.ca, cert: good.client.cert, key: good.client.key })
    const result = await run({ 'docker-host': plain.host }, { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir })
    expect(failure(result)).toContain(`::error::Cannot reach the Docker engine at ${plain.host}: no TLS answered there`)
  })

  test('a unix socket input is used even when DOCKER_HOST is a TLS tcp:// endpoint with half its files', async () => {
    const id = await scene.dangling('input-wins')
    const dir = await certDir('ca-only', { ca: good.ca })
    const env = { DOCKER_HOST: 'tcp://127.0.0.1:1', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir }
    const result = await run({ 'docker-host': engine.host }, env)
    expect(succeeded(result).deleted).toEqual([id])
    expect(result.stdout).toContain(`Engine: ${engine.host} `)
  })
})

describe('the active docker context, with its own TLS material', () => {
  /** A docker config directory whose current context is a tcp+TLS one made by the docker CLI. */
  async function tlsContext(name: string, ca: string): Promise<string> {
    const config = await mkdtemp(join(root, 'config-'))
    const docker = (args: string[]) => promisify(execFile)('/usr/bin/docker', ['--config', config, ...args])
    await docker([
      'context',
      'create',
      name,
      '--docker',
      `host=${tlsHost},ca=${ca},cert=${good.client.cert},key=${good.client.key}`
    ])
    await docker(['context', 'use', name])
    return config
  }

  test('without docker-host and DOCKER_HOST, the context endpoint and its stored TLS files are used', async () => {
    const id = await scene.dangling('ctx-tls')
    const config = await tlsContext('tls-good', good.ca)
    // Variables the context must override: the CLI ignores them for a context of its own.
    const misleading = await certDir('wrong-ca', { ca: wrong.ca, cert: good.client.cert, key: good.client.key })
    const result = await run({}, { DOCKER_CONFIG: config, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: misleading })
    expect(succeeded(result).deleted).toEqual([id])
    expect(result.stdout).toContain(`Engine: ${tlsHost} `)
    await expectNoPem(result)
  })

  test('a context whose CA did not sign the engine certificate: certificate verify failed, naming the context', async () => {
    const id = await scene.dangling('ctx-wrong')
    const config = await tlsContext('tls-wrong', wrong.ca)
    const result = await run({}, { DOCKER_CONFIG: config })
    const error = failure(result)
    expect(error).toContain(
      `::error::Cannot reach the Docker engine at ${tlsHost}: certificate verify failed: unable to verify the first certificate`
    )
    expect(error).toContain('(docker context "tls-wrong")')
    expect(await scene.exists(id)).toBe(true)
    await expectNoPem(result)
  })
})

describe('ssh:// through dockerode (ssh2 and `docker system dial-stdio` on the host)', () => {
  test('signs in with the agent, checks the host key against known_hosts, and removes; DOCKER_TLS_VERIFY does not turn it into https', async () => {
    const id = await scene.dangling('ssh-ok')
    const env = { DOCKER_HOST: ssh.host, DOCKER_TLS_VERIFY: '1', SSH_AUTH_SOCK: ssh.agentSocket, HOME: ssh.home }
    const result = await run({}, env)
    expect(succeeded(result).deleted).toEqual([id])
    expect(result.stdout).toContain(`Engine: ${ssh.host} `)
  })

  test('a host key that known_hosts does not list for the host: refused before any request, nothing removed', async () => {
    const id = await scene.dangling('ssh-unknown-key')
    const result = await run({ 'docker-host': ssh.host }, { SSH_AUTH_SOCK: ssh.agentSocket, HOME: ssh.wrongHome })
    const port = new URL(ssh.host).port
    expect(failure(result)).toBe(
      `::error::Cannot reach the Docker engine at ${ssh.host}: the host key of [127.0.0.1]:${port} is not one that ${ssh.wrongHome}/.ssh/known_hosts or /etc/ssh/ssh_known_hosts lists for it: add it (ssh-keyscan, or one ssh to the host) and check it.`
    )
    expect(await scene.exists(id)).toBe(true)
  })

  test('no agent: the refused sign-in is named', async () => {
    const result = await run({ 'docker-host': ssh.host }, { SSH_AUTH_SOCK: '', HOME: ssh.home })
    expect(failure(result)).toContain(
      `::error::Cannot reach the Docker engine at ${ssh.host}: the ssh server refused every key of the agent at SSH_AUTH_SOCK (unset)`
    )
  })
})
