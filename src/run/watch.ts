import { shortId } from '../common/ids'
import type { Engine } from '../engine/engine'
import { ledgerFile, readLedger, writeLedger } from '../host/ledger-file'
import {
  emptyLedger,
  forget,
  fullId,
  meaningOf,
  nameKey,
  recordEventTime,
  recordUse,
  shortIdOf,
  type EngineEvent,
  type LastUseLedger
} from '../plan/last-use-ledger'
import type { Log } from './log'
import { CheckSchedule } from './schedule'

export interface WatchOptions {
  /** The state folder (host/ledger-file.ts stateDir). */
  stateDir: string
  /** Reaches the engine: called again each time it went away. */
  open: () => Promise<Engine>
  /** The daemon's few lines: where it reads and writes, an engine lost and back, a stop. */
  log: Log
  /** One line per use recorded, where wanted. */
  detail?: (message: string) => void
  /** Ends the watch: the ledger is written before `watch` returns. */
  signal: AbortSignal
  /** The ledger is written at most this often, so that a burst of events costs one write. */
  flushMs?: number
  /** The wait before reaching a lost engine again: doubling from `firstMs` up to `maxMs`. */
  retry?: { firstMs: number; maxMs: number }
  /** Storage targets to hold, where given: the daemon then removes images as well as recording their use. */
  checks?: Checks
}

/** What the daemon does besides keeping the ledger, and how often (schedule.ts). */
export interface Checks {
  /** One check of the targets on the engine, the ledger on disk up to date; it reports what it removed. */
  run: (engine: Engine) => Promise<void>
  everyMs: number
  /** How long image events must pause before a check follows them. */
  quietMs: number
}

const FLUSH_MS = 1000
const RETRY = { firstMs: 1000, maxMs: 60_000 }

/**
 * The host daemon's loop: follows the engine's events and keeps each image's last use in the
 * ledger, until `signal` aborts. An engine that goes away is reached again with a growing wait;
 * neither that nor a damaged ledger ends it.
 */
export async function watch(options: WatchOptions): Promise<void> {
  const { stateDir, log } = options
  const ledger = (await readLedger(stateDir, message => log.warning(message), { moveAside: true })) ?? emptyLedger()
  const saver = new Saver(stateDir, ledger, log)
  const flushing = setInterval(() => void saver.save(), options.flushMs ?? FLUSH_MS)
  log.info(`Ledger: ${ledgerFile(stateDir)}`)
  try {
    await follow(options, ledger, saver)
  } finally {
    clearInterval(flushing)
    await saver.save()
  }
  log.info(`Stopped; the ledger is saved in ${ledgerFile(stateDir)}.`)
}

/** Reaches the engine and reads its events, again and again, until the signal aborts. */
async function follow(options: WatchOptions, ledger: LastUseLedger, saver: Saver): Promise<void> {
  const { log, signal } = options
  const retry = options.retry ?? RETRY
  let wait = retry.firstMs
  let lost: string | undefined
  while (!signal.aborted) {
    let connected = false
    try {
      const engine = await options.open()
      const engineId = await engine.identity()
      connected = true
      if (lost) log.info(`The engine at ${engine.endpoint} is back.`)
      lost = undefined
      wait = retry.firstMs
      await readEvents(engine, engineId, ledger, saver, options)
    } catch (error) {
      if (signal.aborted) break
      const why = error instanceof Error ? error.message : String(error)
      // Once when lost, not at every attempt: a host whose engine is stopped for a day logs two lines.
      if (lost === undefined) log.warning(`Lost the engine (${why}); trying again, less and less often.`)
      lost = why
      if (connected) wait = retry.firstMs
    }
    await pause(wait, signal)
    wait = Math.min(wait * 2, retry.maxMs)
  }
}

async function readEvents(
  engine: Engine,
  engineId: string,
  ledger: LastUseLedger,
  saver: Saver,
  options: WatchOptions
): Promise<void> {
  const { log, detail, signal } = options
  const names = new ImageNames(engine)
  await names.reload()
  const resumed = ledger.engines[engineId]?.lastEvent || undefined
  // From the engine's own now, not from whenever the stream opens: nothing made in between is missed.
  const since = resumed ?? (await engine.clock())
  log.info(
    resumed === undefined
      ? `Following ${engine.endpoint} (engine ${engineId}) from now: the ledger has nothing of it yet.`
      : `Following ${engine.endpoint} (engine ${engineId}) from ${new Date(resumed).toISOString()}, ` +
          'as far back as the engine still holds its events.'
  )
  if (resumed === undefined) {
    // Where it began counts as read: if the engine goes away before its first event, the daemon
    // comes back from here, not from a later now that would skip what happened in between.
    recordEventTime(ledger, engineId, since)
    saver.dirty = true
  }
  const schedule = checksOn(engine, saver, options)
  try {
    schedule?.start()
    for await (const event of engine.events(since, signal)) {
      await apply(event, engineId, ledger, names, detail)
      recordEventTime(ledger, engineId, event.time)
      saver.dirty = true
      // Image events are what adds to image storage; containers come and go far more often.
      if (event.type === 'image' && meaningOf(event) === 'use') schedule?.nudge()
    }
  } finally {
    await schedule?.stop()
  }
}

/** The checks of the targets on this engine, each with the ledger written first so that it orders by it. */
function checksOn(engine: Engine, saver: Saver, { checks, log }: WatchOptions): CheckSchedule | undefined {
  if (!checks) return undefined
  let failing: string | undefined
  const check = async (): Promise<void> => {
    try {
      await saver.save()
      await checks.run(engine)
      failing = undefined
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error)
      // Once per cause, not at every check: a check that keeps failing the same way says so once.
      if (why !== failing) log.warning(`A check of the storage targets failed: ${why}`)
      failing = why
    }
  }
  return new CheckSchedule(check, checks.everyMs, checks.quietMs)
}

/** One event into the ledger; most are dropped on their type and action alone. */
async function apply(
  event: EngineEvent,
  engineId: string,
  ledger: LastUseLedger,
  names: ImageNames,
  detail: ((message: string) => void) | undefined
): Promise<void> {
  const meaning = meaningOf(event)
  if (meaning === 'ignore') return
  if (event.type === 'image') names.follow(event)
  if (meaning === 'gone') {
    const id = fullId(event.subject)
    // Podman also reports `delete` when one of several names goes and the image stays.
    if (id && !(await names.exists(id))) forget(ledger, engineId, id)
    return
  }
  if (meaning !== 'use') return
  const id = await names.resolve(event.subject)
  if (!id) return
  recordUse(ledger, engineId, id, event.time)
  detail?.(`${shortId(id)} used: ${event.type} ${event.action} at ${new Date(event.time).toISOString()}`)
}

/**
 * Image names to IDs, from the engine's list, read again only when a name is not in it or an
 * image event may have moved a name the event does not say: containers are made far more often
 * than images are tagged, and a list costs the engine and the daemon milliseconds on a large host.
 */
class ImageNames {
  private byName = new Map<string, string>()
  private ids: string[] = []
  private fresh = false

  constructor(private readonly engine: Engine) {}

  async reload(): Promise<void> {
    const images = await this.engine.images()
    this.ids = images.map(image => image.id)
    this.byName = new Map()
    for (const image of images)
      for (const ref of [...image.tags, ...image.digests]) {
        const key = nameKey(ref)
        if (key) this.byName.set(key, image.id)
      }
    this.fresh = true
  }

  /**
   * Follows an image event: a tag that names its image and the name moves that one name; a
   * deletion drops the image's names; an untag changes nothing a container could be made from.
   * A pull, load or import may move any name, so the list is read again when next needed.
   */
  follow(event: EngineEvent): void {
    const id = fullId(event.subject)
    const key = event.name === undefined ? undefined : nameKey(event.name)
    if (event.action === 'tag' && id && key) {
      this.byName.set(key, id)
      if (!this.ids.includes(id)) this.ids.push(id)
    } else if (meaningOf(event) === 'gone' && id) {
      for (const [name, named] of this.byName) if (named === id) this.byName.delete(name)
      this.ids = this.ids.filter(known => known !== id)
    } else if (event.action !== 'untag') {
      this.fresh = false
    }
  }

  /** Whether the engine still has the image (one inspect): deletion events are few. */
  exists(id: string): Promise<boolean> {
    return this.engine.exists(id)
  }

  async resolve(subject: string): Promise<string | undefined> {
    const id = fullId(subject)
    if (id) return id
    const found = this.lookup(subject)
    if (found && this.fresh) return found
    await this.reload()
    return this.lookup(subject)
  }

  private lookup(subject: string): string | undefined {
    const key = nameKey(subject)
    const named = key === undefined ? undefined : this.byName.get(key)
    if (named) return named
    const hex = shortIdOf(subject)
    const matches = hex === undefined ? [] : this.ids.filter(id => id.startsWith(`sha256:${hex}`))
    return matches.length === 1 ? matches[0] : undefined
  }
}

/** Writes the ledger when something changed, one write at a time; a failed write is tried again later. */
class Saver {
  dirty = false
  private writing: Promise<void> = Promise.resolve()
  private failing = false

  constructor(
    private readonly dir: string,
    private readonly ledger: LastUseLedger,
    private readonly log: Log
  ) {}

  save(): Promise<void> {
    this.writing = this.writing.then(() => this.write())
    return this.writing
  }

  private async write(): Promise<void> {
    if (!this.dirty) return
    this.dirty = false
    try {
      await writeLedger(this.dir, this.ledger)
      if (this.failing) this.log.info(`The ledger is written again in ${this.dir}.`)
      this.failing = false
    } catch (error) {
      this.dirty = true
      if (!this.failing) this.log.warning(`Cannot write the ledger in ${this.dir}: ${(error as Error).message}`)
      this.failing = true
    }
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    if (signal.aborted) return resolve()
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
  })
}
