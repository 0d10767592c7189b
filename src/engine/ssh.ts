import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { homedir, userInfo } from 'node:os'
import { join } from 'node:path'
import type { ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2'

/** A host key that known_hosts lists for one host. */
export interface KnownKey {
  type: string
  /** The key blob, as the server sends it during the handshake. */
  blob: Buffer
}

/** The files OpenSSH reads by default; the docker CLI runs ssh, so it reads them too. */
export function knownHostsFiles(): string[] {
  return [join(homedir(), '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts']
}

/** How known_hosts names a host: bare on port 22, else `[host]:port`. */
function hostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

/** `|1|salt|hash`: HMAC-SHA1 of the name, keyed with the salt (ssh-keygen -H). */
function hashedMatch(pattern: string, name: string): boolean {
  const [, kind, salt, hash] = pattern.split('|')
  if (kind !== '1' || !salt || !hash) return false
  return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash
}

/**
 * Exact names only: a wildcard pattern (`*`, `?`) never matches, so a host such a line covers is
 * refused rather than guessed at. A negated name (`!host`) excludes the line.
 */
function lineMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|')) return hashedMatch(patterns, name)
  const names = patterns.split(',')
  return names.includes(name) && !names.includes(`!${name}`)
}

/** The keys known_hosts text lists for host:port, and those it marks @revoked. */
export function knownKeys(text: string, host: string, port: number): { keys: KnownKey[]; revoked: Buffer[] } {
  const name = hostName(host, port)
  const keys: KnownKey[] = []
  const revoked: Buffer[] = []
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/)
    if (fields[0] === '' || fields[0].startsWith('#')) continue
    const marker = fields[0].startsWith('@') ? fields.shift() : undefined
    const [patterns, type, key] = fields
    if (!key) continue
    if (marker === '@revoked') revoked.push(Buffer.from(key, 'base64'))
    else if (marker === undefined && lineMatches(patterns, name)) keys.push({ type, blob: Buffer.from(key, 'base64') })
  }
  return { keys, revoked }
}

/** The signature algorithms that prove each key type, so the server is asked for a key we know. */
function hostKeyAlgorithms(types: string[]): ServerHostKeyAlgorithm[] {
  const algorithms = types.flatMap(type => (type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type]))
  return [...new Set(algorithms)] as ServerHostKeyAlgorithm[]
}

/** The files' text; one that is missing or unreadable lists nothing, as for OpenSSH. */
function readKnownHosts(files: string[]): string {
  const read = (file: string): string => {
    try {
      return readFileSync(file, 'utf8')
    } catch {
      return ''
    }
  }
  return files.map(read).join('\n')
}

/**
 * ssh2's settings for an engine over ssh: the agent at SSH_AUTH_SOCK signs in, and the server
 * must show a host key that known_hosts lists for it (ssh2 alone would accept any key).
 */
export function sshOptions(host: string, port: number, files = knownHostsFiles()): ConnectConfig {
  const { keys, revoked } = knownKeys(readKnownHosts(files), host, port)
  const isKnown = (blob: Buffer): boolean =>
    keys.some(known => known.blob.equals(blob)) && !revoked.some(bad => bad.equals(blob))
  return {
    agent: process.env.SSH_AUTH_SOCK,
    hostVerifier: (blob: Buffer) => isKnown(blob),
    ...(keys.length > 0 ? { algorithms: { serverHostKey: hostKeyAlgorithms(keys.map(key => key.type)) } } : {})
  }
}

/** ssh2's words for a host key the verifier refused. */
const HOST_DENIED = /host denied|verification failed/i

/** Why an ssh connection failed, when the reason is the host key or the sign-in; undefined otherwise. */
export function sshFailure(error: unknown, host: string, port: number): string | undefined {
  const message = (error as { message?: string }).message ?? ''
  if (HOST_DENIED.test(message)) {
    return `the host key of ${hostName(host, port)} is not one that ${knownHostsFiles().join(' or ')} lists for it: add it (ssh-keyscan, or one ssh to the host) and check it`
  }
  if (/authentication methods failed/i.test(message)) {
    return `the ssh server refused every key of the agent at SSH_AUTH_SOCK (${process.env.SSH_AUTH_SOCK ? 'set' : 'unset'})`
  }
  return undefined
}

/** Who signs in when the URL names nobody, as ssh does. */
export function localUser(): string {
  return userInfo().username
}
