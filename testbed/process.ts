import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'

const TERM_GRACE_MS = 20_000
const KILL_GRACE_MS = 10_000

// Variables that could send a daemon's traffic anywhere but loopback, or point podman at another
// engine (CONTAINER_HOST makes it a remote client) or at the machine's own containers configuration.
const PROXY_VARS =
  /^((https?|ftp|all|no)_proxy|CONTAINER_HOST|CONTAINER_CONNECTION|CONTAINERS_[A-Z_]+|REGISTRY_AUTH_FILE)$/i
// dockerd finds containerd, runc and docker-init on PATH; /usr/local/bin holds a different docker here.
const SYSTEM_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'

/**
 * The environment of every process the bed starts: no proxies, no podman redirection, and
 * Debian's own binaries only.
 */
export function bedEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !PROXY_VARS.test(k)))
  return { ...env, PATH: SYSTEM_PATH }
}

/** Starts a daemon with bedEnv() (plus `env`), its output appended to logFile. */
export function spawnLogged(
  command: string,
  args: string[],
  logFile: string,
  env: Record<string, string> = {}
): ChildProcess {
  const fd = openSync(logFile, 'a')
  try {
    const child = spawn(command, args, { stdio: ['ignore', fd, fd], env: { ...bedEnv(), ...env } })
    // The test runner must not wait for the daemon; teardown stops it explicitly.
    child.unref()
    return child
  } finally {
    closeSync(fd)
  }
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true)
  return new Promise(resolve => {
    const timer = setTimeout(() => {
      child.off('exit', onExit)
      resolve(false)
    }, ms)
    const onExit = (): void => {
      clearTimeout(timer)
      resolve(true)
    }
    child.once('exit', onExit)
  })
}

/**
 * SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. Returns true if
 * it had to be killed.
 */
export async function stopChild(child: ChildProcess, name: string): Promise<boolean> {
  if (hasExited(child) || child.pid === undefined) return false
  process.kill(child.pid, 'SIGTERM')
  if (await waitForExit(child, TERM_GRACE_MS)) return false
  process.kill(child.pid, 'SIGKILL')
  if (await waitForExit(child, KILL_GRACE_MS)) return true
  throw new Error(`${name} (pid ${child.pid}) survived SIGKILL for ${KILL_GRACE_MS} ms`)
}

function logTail(logFile: string, lines = 40): string {
  if (!existsSync(logFile)) return '(no log written)'
  return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
}

/**
 * The arguments of `unshare` that run `script` as `sh -c` in a mount namespace of its own, whose
 * mounts no other process sees; `name` is its $0, `rest` its arguments.
 */
export function inPrivateMounts(script: string, name: string, ...rest: string[]): string[] {
  return ['--mount', '--propagation=private', '--', '/bin/sh', '-c', script, name, ...rest]
}

export function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** Polls `ready` until it is true; fails early if the daemon dies, and on timeout, with the daemon's log tail. */
export async function waitUntilReady(
  child: ChildProcess,
  name: string,
  logFile: string,
  ready: () => Promise<boolean>,
  timeoutMs: number
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (hasExited(child)) {
      throw new Error(
        `${name} exited (code ${child.exitCode}, signal ${child.signalCode}) before it was ready. Log ${logFile}:\n${logTail(logFile)}`
      )
    }
    if (await ready().catch(() => false)) return
    await sleep(200)
  }
  throw new Error(`${name} (pid ${child.pid}) not ready after ${timeoutMs} ms. Log ${logFile}:\n${logTail(logFile)}`)
}
