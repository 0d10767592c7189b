import { describe, expect, test } from '@jest/globals'
import { parse } from 'yaml'
import { read } from './pages'

interface ActionYml {
  inputs: Record<string, { description: string; default?: string }>
  outputs: Record<string, { description: string }>
}

const action = parse(read('action.yml')) as ActionYml
const readme = read('README.md')

/** The rows of the README table that follows a heading, as cells. */
function table(heading: string): string[][] {
  const section = readme.split(`\n## ${heading}\n`)[1]?.split('\n## ')[0] ?? ''
  return section
    .split('\n')
    .filter(line => line.startsWith('| `'))
    .map(line =>
      line
        .slice(1, -1)
        .split('|')
        .map(cell => cell.trim())
    )
}

const unquote = (cell: string): string => cell.replace(/^`|`$/g, '')

describe('the README tables are action.yml', () => {
  test('inputs: same names, order, defaults and descriptions', () => {
    const rows = table('Inputs').map(([name, fallback, description]) => [unquote(name), unquote(fallback), description])
    const expected = Object.entries(action.inputs).map(([name, spec]) => [name, spec.default ?? '', spec.description])
    expect(rows).toEqual(expected)
  })

  test('outputs: same names, order and descriptions', () => {
    const rows = table('Outputs').map(([name, description]) => [unquote(name), description])
    expect(rows).toEqual(Object.entries(action.outputs).map(([name, spec]) => [name, spec.description]))
  })
})
