import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from '@jest/globals'
import { inputEnv, parseCommandFile } from '../../testbed/runner'

/** What the runner would keep of one step run in this process. */
export interface StepRun {
  /** The step failed: core.setFailed set the exit code. */
  failed: boolean
  /** Everything it printed: log lines and workflow commands. */
  log: string
  /** The messages of its ::error:: and ::warning:: commands. */
  errors: string[]
  warnings: string[]
  outputs: Record<string, string>
  state: Record<string, string>
  summary: string
}

/** Runs `work` as one step, given its inputs, the state an earlier step saved, and more of the runner's variables. */
export type RunStep = (
  inputs: Record<string, string>,
  work: () => Promise<void>,
  state?: Record<string, string>,
  env?: Record<string, string>
) => Promise<StepRun>

const STEP_VARIABLE = /^(INPUT_|STATE_|GITHUB_OUTPUT$|GITHUB_STATE$|GITHUB_STEP_SUMMARY$)/

/**
 * Steps run in this process the way the runner runs them: every input as an INPUT_* variable
 * (action.yml's default where the test gives none), empty GITHUB_OUTPUT, GITHUB_STATE and
 * GITHUB_STEP_SUMMARY files, and a main step's saved state as STATE_* variables. One directory
 * serves the whole test file, because @actions/core keeps the summary's path once it has found it.
 */
export function stepsInProcess(): RunStep {
  let dir = ''
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dirb-unit-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })
  return async (inputs, work, state = {}, env = {}) => {
    const files = {
      GITHUB_OUTPUT: join(dir, 'output'),
      GITHUB_STATE: join(dir, 'state'),
      GITHUB_STEP_SUMMARY: join(dir, 'summary')
    }
    for (const file of Object.values(files)) await writeFile(file, '')
    const stateEnv = Object.fromEntries(Object.entries(state).map(([name, value]) => [`STATE_${name}`, value]))
    const { log, failed } = await withStepEnv({ ...env, ...(await inputEnv(inputs)), ...files, ...stateEnv }, work)
    return {
      failed,
      log,
      errors: commands(log, 'error'),
      warnings: commands(log, 'warning'),
      outputs: parseCommandFile(await readFile(files.GITHUB_OUTPUT, 'utf8')),
      state: parseCommandFile(await readFile(files.GITHUB_STATE, 'utf8')),
      summary: await readFile(files.GITHUB_STEP_SUMMARY, 'utf8')
    }
  }
}

/**
 * Runs `work` with only these step variables set and stdout caught, then puts the process back:
 * the variables as they were, and no exit code, which core.setFailed sets and would fail Jest's run.
 */
async function withStepEnv(
  env: Record<string, string>,
  work: () => Promise<void>
): Promise<{ log: string; failed: boolean }> {
  const saved = { ...process.env }
  for (const name of Object.keys(process.env)) if (STEP_VARIABLE.test(name)) delete process.env[name]
  Object.assign(process.env, env)
  const write = process.stdout.write
  let log = ''
  process.stdout.write = ((chunk: string | Uint8Array) => {
    log += String(chunk)
    return true
  }) as typeof process.stdout.write
  try {
    await work()
    return { log, failed: process.exitCode === 1 }
  } finally {
    process.stdout.write = write
    process.exitCode = undefined
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name]
    Object.assign(process.env, saved)
  }
}

/** The messages of one kind of workflow command, unescaped as the runner reads them. */
function commands(log: string, kind: 'error' | 'warning'): string[] {
  return log
    .split('\n')
    .filter(line => line.startsWith(`::${kind}::`))
    .map(line =>
      line
        .slice(kind.length + 4)
        .replace(/%0D/g, '\r')
        .replace(/%0A/g, '\n')
        .replace(/%25/g, '%')
    )
}
