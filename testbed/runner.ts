import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

export interface ActionRun {
  code: number
  stdout: string
  stderr: string
  outputs: Record<string, string>
  summary: string
  state: Record<string, string>
}

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))
const ACTION_TIMEOUT_MS = 60_000
// Variables the runner sets per step; inherited ones would leak another step's inputs or files.
// NODE_EXTRA_CA_CERTS is this machine's (for its package proxy); a runner has it only if its owner
// sets it. Node 20 reads and parses the named file at every start, before any of the action's code
// (80-90 ms here).
const NOT_INHERITED = /^(INPUT_|GITHUB_|STATE_|NODE_EXTRA_CA_CERTS$)/

interface ActionYml {
  inputs?: Record<string, { default?: string | number | boolean }>
}

/** INPUT_<NAME> the way the runner and @actions/core spell it: upper case, spaces to _, hyphens kept. */
function inputVar(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`
}

/** Every input action.yml declares, as the runner sets it: the given value, else the default. */
export async function inputEnv(inputs: Record<string, string>): Promise<Record<string, string>> {
  const action = parse(await readFile(join(REPO_ROOT, 'action.yml'), 'utf8')) as ActionYml
  const declared = action.inputs ?? {}
  const unknown = Object.keys(inputs).filter(k => !(k in declared))
  if (unknown.length > 0) throw new Error(`inputs not declared in action.yml: ${unknown.join(', ')}`)
  const env: Record<string, string> = {}
  for (const [name, spec] of Object.entries(declared)) env[inputVar(name)] = inputs[name] ?? String(spec.default ?? '')
  return env
}

/** Parses GITHUB_OUTPUT / GITHUB_STATE files: `name<<DELIM\nvalue\nDELIM` blocks and `name=value` lines. */
export function parseCommandFile(text: string): Record<string, string> {
  const result: Record<string, string> = {}
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    const heredoc = line.match(/^([^=]+?)<<(.+)$/)
    if (heredoc) {
      const end = lines.indexOf(heredoc[2], i + 1)
      if (end < 0) throw new Error(`unterminated ${heredoc[1]}<<${heredoc[2]} block in command file`)
      result[heredoc[1]] = lines.slice(i + 1, end).join('\n')
      i = end
    } else if (line.includes('=')) {
      const eq = line.indexOf('=')
      result[line.slice(0, eq)] = line.slice(eq + 1)
    } else if (line !== '') {
      throw new Error(`unparsable command file line: ${line}`)
    }
  }
  return result
}

/** This process's environment as a runner would hand it to a step, before the step's own variables. */
export function runnerEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !NOT_INHERITED.test(k)))
}

function childEnv(base: Record<string, string>, overrides: Record<string, string>): NodeJS.ProcessEnv {
  const env = runnerEnv()
  Object.assign(env, base)
  for (const [k, v] of Object.entries(overrides)) {
    if (v === '') delete env[k]
    else env[k] = v
  }
  return env
}

function runNode(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(
        new Error(
          `action still running after ${ACTION_TIMEOUT_MS} ms; killed it.\nstdout:\n${stdout}\nstderr:\n${stderr}`
        )
      )
    }, ACTION_TIMEOUT_MS)
    child.on('error', err => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr })
    })
  })
}

export interface RunOptions {
  /** The engine the action is pointed at (DOCKER_HOST), unless env says otherwise. */
  host: string
  /** Overrides the child's environment; '' removes a variable. */
  env?: Record<string, string>
  /** The entry point to run instead of the bundle; lets the bed test check the harness itself. */
  script?: string
}

/** Runs the bundled action (dist/index.js) as the GitHub runner would. */
export async function runBundle(inputs: Record<string, string>, opts: RunOptions): Promise<ActionRun> {
  const dir = await mkdtemp(join(tmpdir(), 'dirb-run-'))
  try {
    const files = {
      GITHUB_OUTPUT: join(dir, 'output'),
      GITHUB_STEP_SUMMARY: join(dir, 'summary'),
      GITHUB_STATE: join(dir, 'state')
    }
    for (const file of Object.values(files)) await writeFile(file, '')
    const base = { ...(await inputEnv(inputs)), ...files, DOCKER_HOST: opts.host }
    const run = await runNode(opts.script ?? join(REPO_ROOT, 'dist', 'index.js'), childEnv(base, opts.env ?? {}))
    return {
      ...run,
      outputs: parseCommandFile(await readFile(files.GITHUB_OUTPUT, 'utf8')),
      summary: await readFile(files.GITHUB_STEP_SUMMARY, 'utf8'),
      state: parseCommandFile(await readFile(files.GITHUB_STATE, 'utf8'))
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
