import type { JobIdentity } from '../plan/jobs'

/** The job this step runs in, as the runner names it in the step's environment. */
export function currentJob(env: NodeJS.ProcessEnv = process.env): JobIdentity {
  return {
    repository: env.GITHUB_REPOSITORY ?? '',
    workflow: env.GITHUB_WORKFLOW ?? '',
    runId: env.GITHUB_RUN_ID ?? '',
    runAttempt: env.GITHUB_RUN_ATTEMPT ?? '',
    job: env.GITHUB_JOB ?? '',
    runner: env.RUNNER_NAME ?? ''
  }
}
