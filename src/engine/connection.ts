import { readFileSync } from 'node:fs'
import { Agent as HttpAgent, type AgentOptions } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import { join } from 'node:path'
import { inspect } from 'node:util'
import Docker from 'dockerode'
import { shown, type Endpoint, type TlsSettings } from './endpoint'
import { localUser, sshFailure, sshOptions } from './ssh'

/** docker-modem also takes an HTTP agent and a connection timeout, which @types/dockerode 4 does not list. */
export type ConnectionOptions = Docker.DockerOptions & { agent?: HttpAgent; connectionTimeout?: number }

/** A connection that cannot be set up from the settings given; nothing has been sent. */
export class ConnectionError extends Error {}

/** dockerode's options for the endpoint; TLS files are read here, so a missing one fails before any request. */
export function connectionOptions(endpoint: Endpoint): ConnectionOptions {
  const url = new URL(endpoint.host)
  switch (url.protocol) {
    case 'unix:':
      return { socketPath: decodeURIComponent(url.pathname), agent: plainAgent() }
    case 'npipe:':
      return { socketPath: endpoint.host.slice('npipe:'.length).replace(/\//g, '\\'), agent: plainAgent() }
    case 'ssh:':
      return sshConnection(url)
    default:
      return tcpOptions(url, endpoint)
  }
}

/**
 * Bounds each request's wait for an answer. docker-modem's `timeout` calls setTimeout on the
 * socket, which an ssh2 channel does not have, so over ssh it would crash the process; ssh uses
 * `connectionTimeout` instead, a timer that stops when the answer starts. Other protocols keep
 * `timeout`: `connectionTimeout` would work for them too, but is used only where it must be.
 */
export function withTimeout(options: ConnectionOptions, ms: number): ConnectionOptions {
  return options.protocol === 'ssh' ? { ...options, connectionTimeout: ms } : { ...options, timeout: ms }
}

function sshPort(url: URL): number {
  return Number(url.port) || 22
}

/** docker-modem runs `docker system dial-stdio` on the host over ssh2, one ssh connection per request. */
function sshConnection(url: URL): ConnectionOptions {
  const username = decodeURIComponent(url.username) || localUser()
  return {
    protocol: 'ssh',
    host: url.hostname,
    port: sshPort(url),
    username,
    sshOptions: sshOptions(url.hostname, sshPort(url))
  }
}

function tcpOptions(url: URL, endpoint: Endpoint): ConnectionOptions {
  const { tls } = endpoint
  const base = { host: url.hostname, port: url.port || (tls ? 2376 : 2375) }
  if (!tls) return { ...base, protocol: 'http', agent: plainAgent() }
  // docker-modem passes no rejectUnauthorized, so the agent carries all TLS settings (an agent's own
  // options win over a request's).
  const agent = new HttpsAgent({
    ...readMaterial(tls, endpoint.host),
    rejectUnauthorized: tls.verify,
    minVersion: 'TLSv1.2',
    keepAlive: true
  })
  return { ...base, protocol: 'https', agent: uninspected(agent) }
}

/**
 * Requests share kept-alive connections, as the docker CLI's do, and an idle connection does not
 * keep the process alive. (The TLS agent above keeps connections alive too, so that requests do not
 * each make a TLS handshake.) The empty servername is set although no TLS is spoken: otherwise
 * Node works out a server name for every request, matching the host against an IPv6 pattern that
 * it compiles on first use, which costs start-up time.
 */
function plainAgent(): HttpAgent {
  return uninspected(new HttpAgent({ keepAlive: true, servername: '' } as AgentOptions))
}

/**
 * docker-modem runs util.inspect over every request's options, logging on or not: without this
 * it would walk the agent and all its sockets each time.
 */
function uninspected<T extends HttpAgent>(agent: T): T {
  return Object.defineProperty(agent, inspect.custom, { value: () => `[${agent.constructor.name}]` })
}

interface Material {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
}

/**
 * ca.pem, cert.pem and key.pem as the docker CLI takes them: a client certificate is optional,
 * but never half of one.
 */
function readMaterial(tls: TlsSettings, host: string): Material {
  const read = (name: string, required: boolean): Buffer | undefined => readPem(tls, name, required, host)
  const material = { ca: read('ca.pem', tls.caRequired), cert: read('cert.pem', false), key: read('key.pem', false) }
  if (Boolean(material.cert) !== Boolean(material.key)) {
    const [present, missing] = material.cert ? ['cert.pem', 'key.pem'] : ['key.pem', 'cert.pem']
    throw new ConnectionError(
      `TLS to ${shown(host)}: ${tls.dir} (${tls.source}) holds ${present} but no ${missing}; a client certificate needs both.`
    )
  }
  return material
}

function readPem(tls: TlsSettings, name: string, required: boolean, host: string): Buffer | undefined {
  try {
    return readFileSync(join(tls.dir, name))
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' && !required) return undefined
    const why =
      code === 'ENOENT'
        ? `${tls.dir} (${tls.source}) has none`
        : `it cannot be read in ${tls.dir} (${tls.source}): ${code ?? 'unreadable'}`
    throw new ConnectionError(`TLS to ${shown(host)} needs ${name}, but ${why}.`)
  }
}

/**
 * A dockerode client that uses only `options`. docker-modem merges in what it reads from
 * DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH under any options given: a unix socket
 * input would go to DOCKER_HOST's TCP host, and a DOCKER_CERT_PATH without cert.pem would throw.
 */
export function openDocker(options: ConnectionOptions): Docker {
  const dockerHost = process.env.DOCKER_HOST
  delete process.env.DOCKER_HOST
  try {
    return new Docker(options)
  } finally {
    if (dockerHost !== undefined) process.env.DOCKER_HOST = dockerHost
  }
}

/** OpenSSL's names for a server certificate that does not verify (Node puts them in `code`). */
const UNVERIFIED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID'
])

/** Why the connection failed, when TLS or ssh says more than the raw error; undefined otherwise. */
export function connectionFailure(error: unknown, endpoint: Endpoint): string | undefined {
  const url = new URL(endpoint.host)
  return url.protocol === 'ssh:' ? sshFailure(error, url.hostname, sshPort(url)) : tlsFailure(error, endpoint)
}

/** Why a TLS connection failed, in words that name the files involved (never their contents). */
function tlsFailure(error: unknown, endpoint: Endpoint): string | undefined {
  const { tls } = endpoint
  const err = error as { code?: string; reason?: string; message?: string; statusCode?: number; json?: unknown }
  const code = err.code ?? ''
  const place = tls ? `${tls.dir} (${tls.source})` : ''
  if (tls && UNVERIFIED.has(code)) {
    const against = tls.caRequired ? `ca.pem in ${place}` : `ca.pem in ${place}, or Node's built-in CAs without one`
    return `certificate verify failed: ${err.message ?? code}, checked against ${against}`
  }
  if (
    tls &&
    /ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|UNKNOWN_CA|CERTIFICATE_UNKNOWN|HANDSHAKE_FAILURE)/.test(code)
  ) {
    return `the engine refused the TLS handshake (${err.reason ?? code}): it takes only a client certificate its CA signed, and cert.pem and key.pem in ${place} are not one`
  }
  // Node reports a plain-HTTP answer to a TLS hello as EPROTO, naming OpenSSL's reason only in the message.
  if (tls && /wrong version number|packet length too long|http request/i.test(`${code} ${err.message ?? ''}`)) {
    return `no TLS answered there: the endpoint speaks plain HTTP, but TLS was asked for (${tls.source})`
  }
  if (!tls && err.statusCode === 400 && /HTTP request to an HTTPS server/.test(String(err.json ?? err.message))) {
    return 'the endpoint speaks TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem'
  }
  return undefined
}
