import { readFileSync, readdirSync } from 'node:fs'

/**
 * The pages a reader follows from the Marketplace: README.md and every docs/*.md. The tests
 * that check the README's examples and links read them all through this list, so a page
 * added under docs/ is checked without touching the tests.
 */

export const root = new URL('../../', import.meta.url)

export const read = (path: string): string => readFileSync(new URL(path, root), 'utf8')

export function pages(): string[] {
  const docs = readdirSync(new URL('docs/', root)).filter(name => name.endsWith('.md'))
  return ['README.md', ...docs.sort().map(name => `docs/${name}`)]
}

/** The ```yaml (or ```yml) blocks of a page, in order, as written (indented ones dedented). */
export function yamlBlocks(page: string): string[] {
  return [...read(page).matchAll(/^([ \t]*)```ya?ml\n([\s\S]*?)^[ \t]*```/gm)].map(([, indent, body]) =>
    body.replace(new RegExp(`^${indent}`, 'gm'), '')
  )
}
