import type { Engine } from '../engine/engine'
import { ledgerFile, readLedger, stateDir } from '../host/ledger-file'
import type { Log } from './log'

/** What the host daemon recorded of this engine's images, and a sentence on where last use came from. */
export interface RecordedUse {
  images?: Record<string, number>
  source: string
}

/**
 * The host daemon's ledger for this engine, found as the daemon finds it (host/ledger-file.ts
 * stateDir): where there is none, last use is the engine's own figure alone.
 */
export async function recordedUse(engine: Engine, log: Log, given?: string): Promise<RecordedUse> {
  const dir = stateDir(given)
  const ledger = await readLedger(dir, message => log.warning(message))
  const own = "the engine's own figures"
  if (!ledger) return { source: `${own} (no ledger of the host daemon in ${dir})` }
  let engineId: string
  try {
    engineId = await engine.identity()
  } catch (error) {
    return { source: `${own} (the engine does not say which it is: ${(error as Error).message})` }
  }
  const entry = ledger.engines[engineId]
  if (!entry) return { source: `${own} (the ledger ${ledgerFile(dir)} has nothing of this engine)` }
  const count = Object.keys(entry.images).length
  return {
    images: entry.images,
    source: `${own} and the host daemon's ledger ${ledgerFile(dir)} (${count} images, events up to ${new Date(entry.lastEvent).toISOString()})`
  }
}
