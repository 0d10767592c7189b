import { parseArgs } from 'node:util'
import { InputError } from '../common/errors'
import { stateDir, STATE_DIR_VARIABLE } from '../host/ledger-file'
import { openEngine, type OpenEngine } from '../run/open'
import { watch } from '../run/watch'
import type { Engine } from '../engine/engine'
import { textReport } from '../report/text'
import { reclaim } from '../run/reclaim'
import type { Log } from '../run/log'
import { parseSettings, positiveDuration, type Settings } from '../settings/settings'
import { terminalLog } from './log'
import { inputsOf, type Io } from './run'

const DEFAULT_INTERVAL = '10m'
const DEFAULT_INTERVAL_MS = 600_000
const QUIET_SECONDS = 10

export const WATCH_USAGE = `Usage: docker-image-reclaim watch [options]

Runs until stopped (SIGTERM or SIGINT), following the engine's image and container
events, and records in a ledger when each image was last used: a container created or
started from it, the image pulled, loaded, imported, built or tagged. One-shot runs with
--age-basis last-used (and the action on the same host) then go by the latest of the
engine's own figures and the ledger's. With --max-storage or --min-free it also keeps
them: least recently used images go, by the ledger, once a target is crossed. See
docs/host-daemon.md.

Options:
  --state-dir DIR       where the ledger is kept (default: ${STATE_DIR_VARIABLE}, else
                        /var/lib/docker-image-reclaim for root, else
                        $XDG_STATE_HOME/docker-image-reclaim, ~/.local/state/... by default)
  --docker-host URL     engine endpoint (default: DOCKER_HOST, the docker context, the socket)
  --max-storage SIZE    keep image storage at most SIZE (20GB, or 50% of the disk)
  --min-free SIZE       keep SIZE free under the engine's data root (15GB, or 20%)
  --headroom SIZE       once a target is crossed, evict until it holds with SIZE to spare
                        (2GB, or 5% of the disk); without it, exactly to the target
  --interval D          check the targets this often (default ${DEFAULT_INTERVAL}), as well as at
                        the start and ${QUIET_SECONDS} s after image events (pull, load, build, tag) pause
  --keep REF            never remove these images (repeatable; same forms as --refs)
  --keep-last N         keep the N most recent images of every repository
  --keep-duration D     keep images used less than D ago (90m, 24h, 7d)
  --filter KEY=VALUE    only images that match may go (repeatable; as for the one-shot command)
  --build-cache MODE    count the build cache in the targets and evict its records with the
                        images, least recently used first: dangling (records no image
                        shares) or all (any record no build uses); needs a target
  --dry-run             remove nothing; report at each check what would go
  --timeout D           how long the engine may take to answer one request (default 60s)
  --verbose             log every use recorded, and every check, on stderr
  -h, --help            print this help

Each check that removes something (or, with --dry-run, would) prints the one-shot
command's report on stdout; warnings and the daemon's own lines go to stderr.

Exit codes: 0 stopped by a signal, the ledger saved; 2 bad usage.`

const OPTIONS = {
  'state-dir': { type: 'string' },
  'docker-host': { type: 'string' },
  'max-storage': { type: 'string' },
  'min-free': { type: 'string' },
  headroom: { type: 'string' },
  interval: { type: 'string' },
  keep: { type: 'string', multiple: true },
  'keep-last': { type: 'string' },
  'keep-duration': { type: 'string' },
  filter: { type: 'string', multiple: true },
  'build-cache': { type: 'string' },
  'dry-run': { type: 'boolean' },
  timeout: { type: 'string' },
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
  // A daemon's few lines (following, lost, back, stopped) always show; each use and check only with --verbose.
  const log = terminalLog(io.stderr, true)
  const quiet = terminalLog(io.stderr, Boolean(flags.verbose))
  const dir = stateDir(flags['state-dir'])
  let settings: Settings
  let everyMs: number
  try {
    settings = { ...parseSettings(inputsOf({ ...flags, 'age-basis': 'last-used' }), Date.now()), stateDir: dir }
    everyMs = positiveDuration(flags.interval ?? '', 'interval', DEFAULT_INTERVAL_MS, '30s, 10m or 1h', {
      ms: 1000,
      words: 'a second'
    })
    if (settings.buildCache !== 'none' && !settings.targets)
      throw new InputError('build-cache', 'needs --max-storage or --min-free in watch mode: the cache counts in them.')
  } catch (error) {
    if (error instanceof InputError) return usage(`--${error.input} ${error.problem}`, io.stderr)
    throw error
  }
  const checks = settings.targets && {
    everyMs,
    quietMs: QUIET_SECONDS * 1000,
    run: (engine: Engine) => check(engine, settings, quiet, io.stdout)
  }
  const stopping = new AbortController()
  const onSignal = (): void => stopping.abort()
  if (stop) stop.addEventListener('abort', onSignal)
  else for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, onSignal)
  try {
    await watch({
      stateDir: dir,
      open: () => open(settings, log),
      checks,
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

/**
 * One check: the targets alone decide what goes (no refs, no prune), least recently used first by
 * the ledger; a check that touches nothing prints nothing, so that the daemon's output is what it did.
 */
async function check(engine: Engine, settings: Settings, log: Log, stdout: NodeJS.WritableStream): Promise<void> {
  const result = await reclaim(engine, { ...settings, prune: 'none', untagAdded: false }, log)
  const touched = result.rows.length > 0 || (result.cache?.removed.length ?? 0) > 0
  if (touched || result.interrupted) stdout.write(textReport(result))
  else log.info(`Checked the targets on ${result.endpoint}: they hold, nothing to remove.`)
}

function usage(sentence: string, stderr: NodeJS.WritableStream): number {
  stderr.write(`docker-image-reclaim watch: ${sentence} See docker-image-reclaim watch --help.\n`)
  return 2
}
