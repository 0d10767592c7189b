import { parseNamed, referenceKey } from './reference'

/**
 * What the host daemon (`docker-image-reclaim watch`) remembers of each image's last use, for
 * every engine it has followed. The engine itself forgets a use once the container goes; the
 * ledger does not (docs/host-daemon.md).
 */
export interface LastUseLedger {
  version: 1
  /** By the engine's ID (`/info` ID), so that one state folder serves several engines. */
  engines: Record<string, EngineLedger>
}

export interface EngineLedger {
  /** The time of the latest event read, in milliseconds: where a restart resumes. */
  lastEvent: number
  /** Image ID to the last time it was used, in milliseconds since the epoch. */
  images: Record<string, number>
}

/**
 * One event of `GET /events`, as much of it as the daemon reads. `subject` is what the event is
 * about: the image (an ID or, for a pull, a name) or, for a container, the image it was made from
 * (a name or an ID, as the user typed it).
 */
export interface EngineEvent {
  type: string
  action: string
  subject: string
  /** Milliseconds since the epoch. */
  time: number
  /** For an image's tag: the name it was given (`Attributes.name`), where the engine says. */
  name?: string
}

export const emptyLedger = (): LastUseLedger => ({ version: 1, engines: {} })

/**
 * The events that are a use of an image: a container made or started from it; the image pulled,
 * loaded, imported, or tagged (every build ends with a tag, or with an untagged image no one
 * has used yet).
 */
const USES: Record<string, ReadonlySet<string>> = {
  container: new Set(['create', 'start']),
  image: new Set(['pull', 'load', 'import', 'tag', 'build'])
}

/** Events that change which name means which image, or end an image: the name cache and the ledger follow them. */
const RENAMES = new Set(['tag', 'untag', 'delete', 'pull', 'load', 'import'])

/**
 * Every action the daemon reads, for the engine to filter its stream by: the rest (a container's
 * destroy, die, exec, health checks ...) is then never sent, which halves what a CI host streams.
 */
export const FOLLOWED_ACTIONS = [...new Set([...Object.values(USES).flatMap(set => [...set]), ...RENAMES, 'remove'])]

/** What the daemon does with an event: nothing for most (health checks, exec_*, attach, die ...). */
export type EventMeaning = 'use' | 'rename' | 'gone' | 'ignore'

/**
 * Decided on the type and action alone, before any lookup: the engine's stream carries far more
 * events than uses. Podman spells some actions differently (`remove` for an image's deletion).
 */
export function meaningOf(event: Pick<EngineEvent, 'type' | 'action'>): EventMeaning {
  if (USES[event.type]?.has(event.action)) return 'use'
  if (event.type !== 'image') return 'ignore'
  if (event.action === 'delete' || event.action === 'remove') return 'gone'
  return RENAMES.has(event.action) ? 'rename' : 'ignore'
}

/** The key of an image name in the daemon's name cache: every spelling of one reference shares it. */
export function nameKey(text: string): string | undefined {
  const named = parseNamed(text)
  if (!named) return undefined
  return referenceKey(named.digest ? named : { ...named, tag: named.tag ?? 'latest' })
}

const FULL_ID = /^(?:sha256:)?([0-9a-f]{64})$/
const SHORT_ID = /^(?:sha256:)?([0-9a-f]{12,63})$/

/** An image ID in the engine's list form, for a full ID in either spelling (Podman's has no prefix). */
export function fullId(text: string): string | undefined {
  const match = FULL_ID.exec(text)
  return match ? `sha256:${match[1]}` : undefined
}

/** The hex part of a short ID, as `docker run 0123456789ab` would name an image. */
export function shortIdOf(text: string): string | undefined {
  return SHORT_ID.exec(text)?.[1]
}

/** Records a use; an earlier time than the one known changes nothing, so events may arrive twice. */
export function recordUse(ledger: LastUseLedger, engineId: string, imageId: string, time: number): void {
  const entry = engineOf(ledger, engineId)
  if (time > (entry.images[imageId] ?? 0)) entry.images[imageId] = time
}

/** Moves the resume point forward, never back. */
export function recordEventTime(ledger: LastUseLedger, engineId: string, time: number): void {
  const entry = engineOf(ledger, engineId)
  if (time > entry.lastEvent) entry.lastEvent = time
}

/** An image the engine deleted: its ID will not come back, so the ledger need not keep it. */
export function forget(ledger: LastUseLedger, engineId: string, imageId: string): void {
  delete ledger.engines[engineId]?.images[imageId]
}

function engineOf(ledger: LastUseLedger, engineId: string): EngineLedger {
  ledger.engines[engineId] ??= { lastEvent: 0, images: {} }
  return ledger.engines[engineId]
}

/**
 * The latest of the engine's own figure (plan/usage.ts lastUse) and the ledger's, for the images
 * on the engine now.
 */
export function mergeLastUse(
  engine: Map<string, number>,
  recorded: Record<string, number> | undefined
): Map<string, number> {
  const merged = new Map(engine)
  for (const [id, time] of Object.entries(recorded ?? {})) {
    const known = merged.get(id)
    if (known !== undefined && time > known) merged.set(id, time)
  }
  return merged
}

/** Why a ledger file's text is not a ledger, or the ledger. */
export type Parsed = { ok: true; ledger: LastUseLedger } | { ok: false; problem: string }

/** Checks a ledger file's text: anything this code did not write is refused whole, never half read. */
export function parseLedger(text: string): Parsed {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (error) {
    return { ok: false, problem: `it is not JSON (${(error as Error).message})` }
  }
  if (!isObject(data) || data.version !== 1) return { ok: false, problem: 'it has no "version": 1' }
  if (!isObject(data.engines)) return { ok: false, problem: 'it has no "engines" object' }
  for (const [id, entry] of Object.entries(data.engines)) {
    const problem = engineProblem(entry)
    if (problem) return { ok: false, problem: `engine ${JSON.stringify(id)}: ${problem}` }
  }
  return { ok: true, ledger: data as unknown as LastUseLedger }
}

function engineProblem(entry: unknown): string | undefined {
  if (!isObject(entry)) return 'is not an object'
  if (!isTime(entry.lastEvent)) return '"lastEvent" is not a time in milliseconds'
  if (!isObject(entry.images)) return 'has no "images" object'
  for (const [id, time] of Object.entries(entry.images)) {
    if (!fullId(id) || !id.startsWith('sha256:')) return `${JSON.stringify(id)} is not an image ID`
    if (!isTime(time)) return `the time of ${id} is not a time in milliseconds`
  }
  return undefined
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const isTime = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
