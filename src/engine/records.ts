import { createHash, randomBytes } from 'node:crypto'
import type { JobIdentity, JobRecord, Leftovers } from '../plan/jobs'

/**
 * Job records are named volumes with labels: the engine keeps them whatever runner asks, they cost
 * an empty directory, and no image list shows them. `docker system prune` leaves volumes alone;
 * `docker volume prune` removes unused named volumes before Docker 23 (and on Podman), and then
 * the jobs they stood for can no longer be seen (docs/job-scope.md).
 */
export const RECORD_PREFIX = 'docker-image-reclaim-job-'
/** The job, as JSON: every record has it, so it is the label the engine is asked to filter on. */
export const JOB_LABEL = 'io.github.docker-image-reclaim.job'
/** When the job began, in milliseconds of the engine's clock: only on the record of a job that ended. */
const STARTED_LABEL = 'io.github.docker-image-reclaim.started'
/** What a job that ended left to the others, as JSON. */
const LEFT_LABEL = 'io.github.docker-image-reclaim.left'

/** The part of a volume read here. */
export interface Volume {
  Name: string
  Labels?: Record<string, string> | null
  CreatedAt?: string
}

/** A new, unique record name for a job: readable prefix, then a hash of who it is and a random part. */
export function recordName(job: JobIdentity): string {
  const who = createHash('sha256').update(JSON.stringify(job)).digest('hex').slice(0, 12)
  return `${RECORD_PREFIX}${who}-${randomBytes(4).toString('hex')}`
}

/** The name of the record that replaces a running job's once it has ended. */
export const endedName = (name: string): string => `${name}-ended`

export function recordLabels(job: JobIdentity, ended?: { startedAt: number; left: Leftovers }): Record<string, string> {
  const labels: Record<string, string> = { [JOB_LABEL]: JSON.stringify(job) }
  if (ended) {
    labels[STARTED_LABEL] = String(ended.startedAt)
    labels[LEFT_LABEL] = JSON.stringify(ended.left)
  }
  return labels
}

/**
 * The record a volume stands for, or undefined when it is not one of ours or is damaged (a person
 * may have made a volume with the label): such a volume is neither read nor removed.
 */
export function recordOf(volume: Volume): JobRecord | undefined {
  const labels = volume.Labels ?? {}
  if (!volume.Name.startsWith(RECORD_PREFIX) || !labels[JOB_LABEL]) return undefined
  try {
    const job = JSON.parse(labels[JOB_LABEL]) as JobIdentity
    if (typeof job !== 'object' || job === null || typeof job.runId !== 'string') return undefined
    const left = labels[LEFT_LABEL] ? (JSON.parse(labels[LEFT_LABEL]) as Leftovers) : undefined
    if (left && (!Array.isArray(left.images) || typeof left.tags !== 'object' || left.tags === null)) return undefined
    const startedAt = left ? Number(labels[STARTED_LABEL]) : Date.parse(volume.CreatedAt ?? '')
    if (!Number.isFinite(startedAt)) return undefined
    return { name: volume.Name, job, startedAt, left }
  } catch {
    return undefined
  }
}
