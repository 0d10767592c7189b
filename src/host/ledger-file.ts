import { randomBytes } from 'node:crypto'
import { open, mkdir, readFile, rename, rm } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { parseLedger, type LastUseLedger } from '../plan/last-use-ledger'

export const STATE_DIR_VARIABLE = 'DOCKER_IMAGE_RECLAIM_STATE_DIR'
const LEDGER = 'ledger.json'

/**
 * The state folder: the one given, else the variable's, else the system's for root and the user's
 * own otherwise (the XDG base directory spec's state home). The daemon, the command line and the
 * action all find it this way, so that what one writes the others read.
 */
export function stateDir(
  given: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  uid: number = process.getuid?.() ?? -1
): string {
  if (given) return given
  if (env[STATE_DIR_VARIABLE]) return env[STATE_DIR_VARIABLE]
  if (uid === 0) return '/var/lib/docker-image-reclaim'
  return join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'docker-image-reclaim')
}

export const ledgerFile = (dir: string): string => join(dir, LEDGER)

/**
 * The ledger in the folder, or undefined where there is none. A damaged one is taken as none, with
 * a warning: the engine's own figures still stand. The daemon, which owns the file, moves it aside
 * (`moveAside`) and starts afresh rather than stop a host's cleaning over a file; a one-shot run
 * leaves it to the daemon.
 */
export async function readLedger(
  dir: string,
  warn: (message: string) => void,
  { moveAside = false, now = Date.now() }: { moveAside?: boolean; now?: number } = {}
): Promise<LastUseLedger | undefined> {
  const file = ledgerFile(dir)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    warn(`Cannot read the ledger ${file}: ${(error as Error).message}; going by the engine's own figures.`)
    return undefined
  }
  const parsed = parseLedger(text)
  if (parsed.ok) return parsed.ledger
  if (!moveAside) {
    warn(`The ledger ${file} is damaged (${parsed.problem}); going by the engine's own figures.`)
    return undefined
  }
  const aside = `${file}.damaged-${new Date(now).toISOString().replace(/[:.]/g, '-')}`
  try {
    await rename(file, aside)
    warn(`The ledger ${file} is damaged (${parsed.problem}): moved to ${aside}, starting a new one.`)
  } catch (error) {
    warn(`The ledger ${file} is damaged (${parsed.problem}) and cannot be moved aside: ${(error as Error).message}.`)
  }
  return undefined
}

/**
 * Replaces the ledger whole: a temporary file in the same folder, flushed to disk, renamed over
 * the old one. A crash at any point leaves either the old ledger or the new, never half of one.
 */
export async function writeLedger(dir: string, ledger: LastUseLedger): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 })
  const temporary = join(dir, `.${LEDGER}.${process.pid}-${randomBytes(4).toString('hex')}`)
  try {
    const handle = await open(temporary, 'w', 0o644)
    try {
      await handle.writeFile(`${JSON.stringify(ledger)}\n`)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temporary, ledgerFile(dir))
  } catch (error) {
    await rm(temporary, { force: true })
    throw error
  }
  await syncFolder(dir)
}

/** The rename itself lasts only once the folder is on disk too. */
async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } catch {
    // Some filesystems refuse to sync a folder; the file itself is already on disk.
  } finally {
    await handle.close()
  }
}
