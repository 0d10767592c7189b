import { parseArgs } from 'node:util'
import { InputError } from '../common/errors'
import { stateDir, STATE_DIR_VARIABLE } from '../host/ledger-file'
import { openEngine, type OpenEngine } from '../run/open'
import { watch } from '../run/watch'
import { parseSettings } from '../settings/settings'
import { terminalLog } from './log'
import { inputsOf, type Io } from './run'

export const WATCH_USAGE = `Usage: docker-image-reclaim watch [options]

Runs until stopped (SIGTERM or SIGINT), following the engine's image and container
events, and records in a ledger when each image was last used: a container created or
started from it, the image pulled, loaded, imported, built or tagged. One-shot runs with
--age-basis last-used (and the action on the same host) then go by the latest of the
engine's own figures and the ledger's. See docs/host-daemon.md.

Options:
  --state-dir DIR       where the ledger is kept (default: ${STATE_DIR_VARIABLE}, else
                        /var/lib/docker-image-reclaim for root, else
                        $XDG_STATE_HOME/docker-image-reclaim, ~/.local/state/... by default)
  --docker-host URL     engine endpoint (default: DOCKER_HOST, the docker context, the socket)
  --verbose             log every use recorded on stderr
  -h, --help            print this help

Removing images from the daemon (targets, headroom, checks at an interval) comes next.

Exit codes: 0 stopped by a signal, the ledger saved; 2 bad usage.`

const OPTIONS = {
  'state-dir': { type: 'string' },
  'docker-host': { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
} as const

/**
 * `docker-image-reclaim watch`: until `stop` aborts, or else until SIGTERM or SIGINT. Both signals
 * end it the same way: the ledger written, exit 0, as a service manager expects of a clean stop.
 */
export async function runWatch(
  argv: string[],
  io: Io,
  open: OpenEngine = openEngine,
  stop?: AbortSignal
): Promise<number> {
  let flags
  try {
    flags = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values
  } catch (error) {
    return usage(`${(error as Error).message.split(/\.(?: |\n|$)/)[0]}.`, io.stderr)
  }
  if (flags.help) {
    io.stdout.write(`${WATCH_USAGE}\n`)
    return 0
  }
  // A daemon's few lines (following, lost, back, stopped) always show; each use only with --verbose.
  const log = terminalLog(io.stderr, true)
  let settings
  try {
    settings = parseSettings(inputsOf({ 'docker-host': flags['docker-host'] }), Date.now())
  } catch (error) {
    if (error instanceof InputError) return usage(`--${error.input} ${error.problem}`, io.stderr)
    throw error
  }
  const stopping = new AbortController()
  const onSignal = (): void => stopping.abort()
  if (stop) stop.addEventListener('abort', onSignal)
  else for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, onSignal)
  try {
    await watch({
      stateDir: stateDir(flags['state-dir']),
      open: () => open(settings, log),
      log,
      detail: flags.verbose ? message => log.info(message) : undefined,
      signal: stopping.signal
    })
    return 0
  } catch (error) {
    io.stderr.write(`docker-image-reclaim: ${error instanceof Error ? error.message : String(error)}\n`)
    return 1
  } finally {
    if (!stop) for (const signal of ['SIGTERM', 'SIGINT'] as const) process.off(signal, onSignal)
  }
}

function usage(sentence: string, stderr: NodeJS.WritableStream): number {
  stderr.write(`docker-image-reclaim watch: ${sentence} See docker-image-reclaim watch --help.\n`)
  return 2
}
