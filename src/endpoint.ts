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
