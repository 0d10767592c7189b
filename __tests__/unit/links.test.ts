import { existsSync, statSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import { describe, expect, test } from '@jest/globals'
import { Lexer, type Token, type Tokens } from 'marked'
import { pages, read, root } from './pages'

/**
 * Every relative link and image in the README and docs/*.md points at a file of this repository,
 * and every `#anchor` at a heading of the page it names, as GitHub makes anchors from headings;
 * every page under docs/ is linked from the README, so none is out of a reader's reach.
 * Links are read with marked's lexer, so code blocks and code spans are left alone.
 */

/** Every token of a page, nested ones included. */
function tokensOf(markdown: string): Token[] {
  const all: Token[] = []
  const walk = (tokens: Token[]): void => {
    for (const token of tokens) {
      all.push(token)
      if ('tokens' in token && Array.isArray(token.tokens)) walk(token.tokens)
      if (token.type === 'list') walk((token as Tokens.List).items)
      if (token.type === 'table') {
        const table = token as Tokens.Table
        walk([...table.header, ...table.rows.flat()].flatMap(cell => cell.tokens))
      }
    }
  }
  walk(new Lexer({ gfm: true }).lex(markdown))
  return all
}

/** The text a heading shows, without its Markdown. */
function plainText(tokens: Token[]): string {
  return tokens
    .map(token =>
      'tokens' in token && Array.isArray(token.tokens)
        ? plainText(token.tokens)
        : 'text' in token
          ? String(token.text)
          : ''
    )
    .join('')
}

/** GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>()
  for (const token of tokensOf(markdown)) {
    if (token.type !== 'heading') continue
    const slug = plainText((token as Tokens.Heading).tokens)
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-')
    let anchor = slug
    for (let n = 1; anchors.has(anchor); n++) anchor = `${slug}-${n}`
    anchors.add(anchor)
  }
  return anchors
}

/** Where the links and images of a page point, as written. */
function hrefsOf(markdown: string): string[] {
  return tokensOf(markdown)
    .filter((token): token is Tokens.Link | Tokens.Image => token.type === 'link' || token.type === 'image')
    .map(token => token.href)
}

/** The links of a page (path as in the repository) that point at no file, or at no heading of it. */
function brokenLinks(page: string, markdown: string, readPage: (path: string) => string | undefined): string[] {
  return hrefsOf(markdown).filter(href => {
    if (/^[a-z][a-z0-9+.-]*:/i.test(href)) return false // https:, mailto: and the like
    const [path, anchor] = href.split('#', 2)
    const target = path === '' ? page : normalize(join(dirname(page), decodeURIComponent(path)))
    const text = readPage(target)
    if (text === undefined) return true
    return anchor !== undefined && target.endsWith('.md') && !anchorsOf(text).has(anchor)
  })
}

/** A file of the repository as text, '' for a folder, undefined when there is none. */
function readRepoFile(path: string): string | undefined {
  if (path.startsWith('..')) return undefined
  const url = new URL(path, root)
  if (!existsSync(url)) return undefined
  return statSync(url).isDirectory() ? '' : read(path)
}

describe('links between the README and docs/ resolve', () => {
  test.each(pages())('%s', page => {
    expect(brokenLinks(page, read(page), readRepoFile)).toEqual([])
  })

  test('every page under docs/ is linked from the README', () => {
    const linked = new Set(hrefsOf(read('README.md')).map(href => href.split('#')[0]))
    expect(pages().filter(page => page !== 'README.md' && !linked.has(page))).toEqual([])
  })

  test('a missing file, a missing heading and a link out of the repository are caught (the check has teeth)', () => {
    const page =
      '# Title\n\n## Some `code`, and "quotes"\n\nSee [a](#some-code-and-quotes), [b](#nope), [c](docs/nope.md), [d](../outside.md), [e](https://example.com/x).\n'
    expect(brokenLinks('README.md', page, path => (path === 'README.md' ? page : readRepoFile(path)))).toEqual([
      '#nope',
      'docs/nope.md',
      '../outside.md'
    ])
  })

  test('anchors follow GitHub: repeats are numbered, punctuation goes, hyphens stay', () => {
    expect([
      ...anchorsOf('# A\n\n## A\n\n## Storage targets, and what "recent" means\n\n## `scope: job` - post step\n')
    ]).toEqual(['a', 'a-1', 'storage-targets-and-what-recent-means', 'scope-job---post-step'])
  })
})
