import { formatAge } from '../common/units'
import type { Engine } from '../engine/engine'
import { endedName } from '../engine/records'
import { describeJob, leftoversOf, overlap, withoutLeftovers, type JobIdentity, type JobRecord } from '../plan/jobs'
import type { Snapshot } from '../plan/model'
import type { Settings } from '../settings/settings'
import type { Log } from './log'
import { reclaim, snapshotImages, type Result } from './reclaim'

/** What the main step of `scope: job` hands its post step. */
export interface JobStart {
  /** The job's record on the engine. */
  record: string
  snapshot: Snapshot
}

/**
 * The main step of `scope: job`: leaves the job's record on the engine first, so that any job that
 * ends while this one runs already sees it, then records the images present.
 */
export async function beginJob(engine: Engine, name: string, job: JobIdentity, log: Log): Promise<JobStart> {
  const record = await engine.addJobRecord(name, job)
  const snapshot = await snapshotImages(engine, log)
  const others = (await engine.jobRecords()).filter(other => other.name !== record.name && !other.left)
  if (others.length > 0) {
    log.info(
      `${others.length} other job${others.length === 1 ? '' : 's'} on this engine left a record: ` +
        `what appears while they run stays for the last job to finish.`
    )
  }
  return { record: record.name, snapshot }
}

/**
 * The post step of `scope: job` on an engine other jobs may share. It removes what this job added,
 * except what appeared while another job was running, which it leaves to them; the last job to
 * finish removes also what the jobs before it left. Then it retires its record: removed by the last
 * job, else replaced by one that lists what it left.
 */
export async function endJob(
  engine: Engine,
  settings: Settings,
  start: { record?: string; snapshot: Snapshot; cache?: string[] },
  log: Log
): Promise<Result> {
  const [records, now] = await Promise.all([engine.jobRecords(), engine.clock()])
  const own = records.find(record => record.name === start.record)
  if (!own) {
    log.warning(
      `This job's record is no longer on the engine (${start.record ? 'removed while the job ran' : 'the main step left none'}): ` +
        'other jobs that ended meanwhile could not see this one. docker volume prune removes such records (docs/job-scope.md).'
    )
  }
  const { running, ended, expired } = overlap(start.record ?? '', records, now, settings.jobTimeout)
  for (const record of expired) {
    await engine.removeJobRecord(record.name)
    log.info(
      `Removed the record of ${describeJob(record.job)}: it began ${formatAge(record.startedAt, now)} ago, ` +
        'longer than job-timeout, so its post step will not run.'
    )
  }
  const last = running.length === 0
  if (!last) log.info(`Still running on this engine: ${running.map(record => describeJob(record.job)).join('; ')}.`)
  else if (ended.length > 0) log.info(`Last to finish: removing also what ${ended.length} job(s) before left.`)
  const preexisting = last ? withoutLeftovers(start.snapshot, ended) : start.snapshot
  const result = await reclaim(
    engine,
    { ...settings, preexisting, otherJobs: running, preexistingCache: start.cache },
    log
  )
  if (result.interrupted) return result
  await retire(engine, own, last ? ended : [], result.leftForOthers)
  return result
}

/** The job is over: the last removes every record of the jobs that ended; any other leaves what it left. */
async function retire(engine: Engine, own: JobRecord | undefined, ended: JobRecord[], left: string[]): Promise<void> {
  if (own && left.length > 0) {
    // The ended record is made before the running one is removed, so another job always sees one.
    await engine.addJobRecord(endedName(own.name), own.job, { startedAt: own.startedAt, left: leftoversOf(left) })
  }
  for (const record of ended) await engine.removeJobRecord(record.name)
  if (own) await engine.removeJobRecord(own.name)
}
