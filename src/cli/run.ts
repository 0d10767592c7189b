import { parseArgs } from 'node:util'
import { InputError } from '../common/errors'
import { conclude } from '../report/conclude'
import { jsonReport, textReport } from '../report/text'
import { openEngine, type OpenEngine } from '../run/open'
import { reclaim } from '../run/reclaim'
import { parseSettings, type RawInputs } from '../settings/settings'
import { terminalLog } from './log'

const USAGE = `Usage: docker-image-reclaim [options]
       docker-image-reclaim watch [options]   (the host daemon: see watch --help)

Removes and prunes Docker images, like docker image rm and docker image prune, and
reports the bytes it gave back. With neither --refs, --prune nor --build-cache it prunes
dangling images.

Options (each mirrors the GitHub Action input of the same name):
  --refs REF            image to remove (repeatable): short or full ID, name, name:tag,
                        name@sha256:DIGEST, or a pattern with * and ?
  --filter KEY=VALUE    narrow the selection (repeatable): dangling, label, label!, before,
                        since, reference, until (until also judges build cache records)
  --prune MODE          dangling or all
  --build-cache MODE    also remove the build cache, after the images: dangling (like
                        docker builder prune) or all (like docker builder prune -a)
  --force               like docker rmi -f (never touches images of running containers)
  --no-prune            keep the untagged parents of removed images
  --keep-duration D     keep images created less than D ago (90m, 24h, 7d, 2w), and build
                        cache records used less than D ago
  --keep REF            never remove nor untag these images (repeatable; same forms as --refs)
  --keep-last N         keep the N most recent images of every repository
  --age-basis BASIS     created (default) or last-used: what recent means for the keep rules
  --max-storage SIZE    remove least recently used images until image storage is at most
                        SIZE (20GB, 18.5GiB, 500MB, or 50% of the disk under the data root)
  --min-free SIZE       ... until the filesystem under the engine's data root has SIZE free
                        (15GB, or a share of it such as 20%)
  --headroom SIZE       with a target: evict only once one is crossed, then until it holds
                        with SIZE to spare (2GB, or 5% of the disk)
  --dry-run             change nothing; report what would go and the bytes it would free
  --fail-on-error       exit 1 when a named ref was not found or could not be removed
  --docker-host URL     engine endpoint (default: DOCKER_HOST, the docker context, the socket)
  --timeout D           how long the engine may take to answer one request (default 60s)
  --json                print the result as JSON
  --verbose             log each step on stderr
  -h, --help            print this help

Exit codes: 0 done, 1 failed (engine unreachable, or --fail-on-error and a named ref
could not be removed), 2 bad usage.`

const OPTIONS = {
  refs: { type: 'string', multiple: true },
  filter: { type: 'string', multiple: true },
  prune: { type: 'string' },
  'build-cache': { type: 'string' },
  force: { type: 'boolean' },
  'no-prune': { type: 'boolean' },
  'keep-duration': { type: 'string' },
  keep: { type: 'string', multiple: true },
  'keep-last': { type: 'string' },
  'age-basis': { type: 'string' },
  'max-storage': { type: 'string' },
  'min-free': { type: 'string' },
  headroom: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'fail-on-error': { type: 'boolean' },
  'docker-host': { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
} as const

type Flags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values']

/** The flags as the action's inputs, so both are checked by the same parser. */
export function inputsOf(flags: Flags): RawInputs {
  return {
    refs: (flags.refs ?? []).join('\n'),
    filters: (flags.filter ?? []).join('\n'),
    prune: flags.prune ?? '',
    'build-cache': flags['build-cache'] ?? '',
    force: String(Boolean(flags.force)),
    'no-prune': String(Boolean(flags['no-prune'])),
    'keep-duration': flags['keep-duration'] ?? '',
    keep: (flags.keep ?? []).join('\n'),
    'keep-last': flags['keep-last'] ?? '',
    'age-basis': flags['age-basis'] ?? '',
    'max-storage': flags['max-storage'] ?? '',
    'min-free': flags['min-free'] ?? '',
    headroom: flags.headroom ?? '',
    'dry-run': String(Boolean(flags['dry-run'])),
    'fail-on-error': String(Boolean(flags['fail-on-error'])),
    'docker-host': flags['docker-host'] ?? '',
    summary: 'false',
    scope: 'all',
    'job-timeout': '',
    timeout: flags.timeout ?? ''
  }
}

/** The name a user typed: --filter for the filters input. */
const flagName = (input: string): string => `--${input === 'filters' ? 'filter' : input}`

/** Where the command line writes: the process's own streams, or a test's. */
export interface Io {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
}

/** One invocation, from its arguments to its exit code. */
export async function run(argv: string[], io: Io, open: OpenEngine = openEngine): Promise<number> {
  try {
    const flags = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values
    if (flags.help) {
      io.stdout.write(`${USAGE}\n`)
      return 0
    }
    const settings = parseSettings(inputsOf(flags), Date.now())
    const log = terminalLog(io.stderr, Boolean(flags.verbose))
    const result = await reclaim(await open(settings, log), settings, log)
    io.stdout.write(flags.json ? jsonReport(result) : textReport(result))
    return conclude(result, settings.failOnError, log) ? 1 : 0
  } catch (error) {
    return failed(error, io.stderr)
  }
}

function failed(error: unknown, stderr: NodeJS.WritableStream): number {
  if (error instanceof InputError) return usage(`${flagName(error.input)} ${error.problem}`, stderr)
  // Recognised by its code, not instanceof: in a test's VM context, Node's TypeError is another class.
  const parseArgsError = error as { code?: unknown; message: string } | undefined
  if (parseArgsError && String(parseArgsError.code).startsWith('ERR_PARSE_ARGS')) {
    // Node's message goes on to give advice about '--' and dashes; only its first sentence is shown.
    return usage(`${parseArgsError.message.split(/\.(?: |\n|$)/)[0]}.`, stderr)
  }
  stderr.write(`docker-image-reclaim: ${error instanceof Error ? error.message : String(error)}\n`)
  return 1
}

function usage(sentence: string, stderr: NodeJS.WritableStream): number {
  stderr.write(`docker-image-reclaim: ${sentence} See --help.\n`)
  return 2
}
