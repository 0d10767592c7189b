import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import * as exec from '@actions/exec'

const DEFAULT_HOST = process.platform === 'win32' ? 'npipe:////./pipe/docker_engine' : 'unix:///var/run/docker.sock'

/** Where the engine is, and the TLS material the docker CLI would use to reach it. */
export interface Endpoint {
  host: string
  /** Absent when nothing asks for TLS, and always for unix://, npipe:// and ssh:// hosts. */
  tls?: TlsSettings
}

export interface TlsSettings {
  /** Holds ca.pem, and cert.pem with key.pem when the client presents a certificate. */
  dir: string
  /** Check the engine's certificate (and its name) against ca.pem, or Node's built-in CAs without one. */
  verify: boolean
  /** The docker CLI refuses TLS from DOCKER_CERT_PATH without ca.pem; a context may rely on well-known CAs. */
  caRequired: boolean
  /** What chose dir, as messages name it: DOCKER_CERT_PATH, or the docker context. */
  source: string
}

/**
 * The engine to talk to, in the docker CLI's order of precedence: the
 * input, DOCKER_HOST, the active docker context, the platform default.
 */
export async function resolveEndpoint(input: string, env: NodeJS.ProcessEnv = process.env): Promise<Endpoint> {
  const host = input || env.DOCKER_HOST
  if (host) return { host, tls: tlsFromEnv(host, env) }
  if (activeContext(env) === DEFAULT_CONTEXT) return { host: DEFAULT_HOST }
  return (await contextEndpoint(env)) ?? { host: DEFAULT_HOST }
}

const DEFAULT_CONTEXT = 'default'

/**
 * The context the docker CLI would use without DOCKER_HOST (docker/cli cli/command/cli.go,
 * resolveContextName): DOCKER_CONTEXT, else the config file's currentContext, else the default
 * one. Read here so that most runs, on the default context, need not start the docker CLI at all.
 * Undefined when the config file cannot be read as plain JSON: the CLI is then asked instead.
 */
function activeContext(env: NodeJS.ProcessEnv): string | undefined {
  if (env.DOCKER_CONTEXT) return env.DOCKER_CONTEXT
  let text: string
  try {
    text = readFileSync(join(configDir(env), 'config.json'), 'utf8')
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? DEFAULT_CONTEXT : undefined
  }
  try {
    const { currentContext } = JSON.parse(text) as { currentContext?: unknown }
    return typeof currentContext === 'string' && currentContext !== '' ? currentContext : DEFAULT_CONTEXT
  } catch {
    return undefined
  }
}

function configDir(env: NodeJS.ProcessEnv): string {
  return env.DOCKER_CONFIG || join(homedir(), '.docker')
}

/**
 * TLS for a host given by the input or DOCKER_HOST, as the docker CLI reads its variables
 * (docker/cli cli/flags/options.go): any non-empty DOCKER_TLS_VERIFY, "0" included, turns TLS on
 * with verification; a non-empty DOCKER_TLS alone turns it on without; the files come from
 * DOCKER_CERT_PATH, else the CLI's config directory. The CLI refuses http:// and https:// hosts;
 * here http:// is always plain and https:// always TLS.
 */
export function tlsFromEnv(host: string, env: NodeJS.ProcessEnv): TlsSettings | undefined {
  if (!/^(tcp|https):\/\//.test(host)) return undefined
  const verifyAsked = Boolean(env.DOCKER_TLS_VERIFY)
  if (!verifyAsked && !env.DOCKER_TLS && !host.startsWith('https://')) return undefined
  const verify = verifyAsked || !env.DOCKER_TLS
  if (env.DOCKER_CERT_PATH) return { dir: env.DOCKER_CERT_PATH, verify, caRequired: true, source: 'DOCKER_CERT_PATH' }
  return {
    dir: configDir(env),
    verify,
    caRequired: true,
    source: 'DOCKER_CERT_PATH unset: the docker config directory'
  }
}

/** What `docker context inspect --format '{{json .}}'` says of the active context. */
interface InspectedContext {
  Name?: string
  Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } }
  TLSMaterial?: { docker?: string[] }
  Storage?: { TLSPath?: string }
}

/**
 * The active context's endpoint with the TLS material stored with it (`docker context create
 * --docker host=...,ca=...,cert=...,key=...` copies the files under the context store's TLS path,
 * in a `docker` directory). Like the CLI, a context with neither files nor skip-tls-verify has no TLS.
 */
export function contextFromInspect(json: string, env: NodeJS.ProcessEnv): Endpoint | undefined {
  let context: InspectedContext
  try {
    context = JSON.parse(json) as InspectedContext
  } catch {
    return undefined
  }
  const host = context.Endpoints?.docker?.Host
  if (!host) return undefined
  if (context.Name === DEFAULT_CONTEXT) return { host, tls: tlsFromEnv(host, env) }
  const skipVerify = context.Endpoints?.docker?.SkipTLSVerify === true
  const material = context.TLSMaterial?.docker ?? []
  const tlsPath = context.Storage?.TLSPath
  if (!host.startsWith('tcp://') || !tlsPath || (material.length === 0 && !skipVerify)) return { host }
  const source = `docker context "${context.Name ?? ''}"`
  return { host, tls: { dir: resolve(tlsPath, 'docker'), verify: !skipVerify, caRequired: false, source } }
}

/** The active context's endpoint; undefined when there is no docker CLI or it says nothing. */
async function contextEndpoint(env: NodeJS.ProcessEnv): Promise<Endpoint | undefined> {
  try {
    const { exitCode, stdout } = await exec.getExecOutput('docker', ['context', 'inspect', '--format', '{{json .}}'], {
      silent: true,
      ignoreReturnCode: true
    })
    return exitCode === 0 ? contextFromInspect(stdout.trim(), env) : undefined
  } catch {
    return undefined
  }
}

/** The password an endpoint URL carries (tcp://user:secret@host), which must never be shown. */
export function credentials(endpoint: string | undefined): string[] {
  if (!endpoint) return []
  try {
    const password = decodeURIComponent(new URL(endpoint).password)
    return password ? [password] : []
  } catch {
    return []
  }
}

/** The endpoint as logs, errors and the summary may show it. */
export function shown(endpoint: string): string {
  return credentials(endpoint).reduce(
    (text, secret) => text.split(encodeURIComponent(secret)).join('***').split(secret).join('***'),
    endpoint
  )
}
