import * as exec from '@actions/exec'

const DEFAULT_HOST = process.platform === 'win32' ? 'npipe:////./pipe/docker_engine' : 'unix:///var/run/docker.sock'

/**
 * The engine to talk to, in the docker CLI's order of precedence: the
 * input, DOCKER_HOST, the active docker context, the platform default.
 */
export async function resolveHost(input: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (input) return input
  if (env.DOCKER_HOST) return env.DOCKER_HOST
  return (await contextHost()) ?? DEFAULT_HOST
}

/** The active context's endpoint; undefined when there is no docker CLI or it says nothing. */
async function contextHost(): Promise<string | undefined> {
  try {
    const { exitCode, stdout } = await exec.getExecOutput('docker', ['context', 'inspect', '--format', '{{.Endpoints.docker.Host}}'], {
      silent: true,
      ignoreReturnCode: true
    })
    const host = stdout.trim()
    return exitCode === 0 && host ? host : undefined
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
  return credentials(endpoint).reduce((text, secret) => text.split(encodeURIComponent(secret)).join('***').split(secret).join('***'), endpoint)
}
