import * as core from '@actions/core'
import type { Snapshot } from '../plan/model'

const POST = 'isPost'
const SNAPSHOT = 'snapshot'
const RECORD = 'record'
const CACHE = 'buildCache'

/** True in the post step only: the runner hands what the main step saved to the post step alone. */
export const isPost = core.getState(POST) === 'true'

/** Saved before anything else, so that the post step recognises itself even when the main step failed. */
export function markMainStarted(): void {
  core.saveState(POST, 'true')
}

export function saveSnapshot(snapshot: Snapshot): void {
  core.saveState(SNAPSHOT, JSON.stringify(Object.fromEntries([...snapshot].map(([id, refs]) => [id, [...refs]]))))
}

/** The name of the job's record on the engine, saved before the record is made. */
export function saveRecordName(name: string): void {
  core.saveState(RECORD, name)
}

export function loadRecordName(): string | undefined {
  return core.getState(RECORD) || undefined
}

/** The images present when the main step ran, or undefined when none was recorded or it is unreadable. */
export function loadSnapshot(): Snapshot | undefined {
  const text = core.getState(SNAPSHOT)
  if (!text) return undefined
  try {
    const record = JSON.parse(text) as Record<string, string[]>
    return new Map(Object.entries(record).map(([id, refs]) => [id, new Set(refs)]))
  } catch {
    return undefined
  }
}

/** The IDs of the build cache records present when the main step ran (`build-cache` in job scope). */
export function saveCacheIds(ids: string[]): void {
  core.saveState(CACHE, JSON.stringify(ids))
}

/** The cache records the main step found, or undefined when it saved none or they are unreadable. */
export function loadCacheIds(): string[] | undefined {
  const text = core.getState(CACHE)
  if (!text) return undefined
  try {
    const ids = JSON.parse(text) as unknown
    return Array.isArray(ids) && ids.every(id => typeof id === 'string') ? ids : undefined
  } catch {
    return undefined
  }
}
