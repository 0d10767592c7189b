// Docker's reference grammar (github.com/distribution/reference, regexp.go),
// so that only well-formed names ever reach the engine.
const ALNUM = '[a-z0-9]+'
const SEPARATOR = '(?:[._]|__|-+)'
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`
const TAG = '[\\w][\\w.-]{0,127}'
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}'
const REFERENCE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`)
const MAX_NAME_LENGTH = 255

const FULL_ID = /^(?:sha256:)?([0-9a-f]{64})$/
const ID_PREFIX = /^(?:sha256:)?([0-9a-f]{1,64})$/
const PATTERN = /^[A-Za-z0-9._\-/:@*?]+$/

const DEFAULT_DOMAIN = 'docker.io'
const OFFICIAL_PREFIX = 'library/'

export interface NamedRef {
  /** Fully qualified repository, e.g. `docker.io/library/alpine`. */
  name: string
  tag?: string
  digest?: string
}

/** What one entry of `refs` or `keep` asks for. */
export type RefSpec =
  | { kind: 'id'; text: string; prefix: string; full: boolean }
  | { kind: 'name'; text: string; ref: NamedRef; idPrefix?: string }
  | { kind: 'pattern'; text: string; pattern: RegExp }

/** Splits a repository into Docker's domain and path, qualifying short names. */
function qualify(name: string): string {
  const slash = name.indexOf('/')
  const first = slash < 0 ? '' : name.slice(0, slash)
  const hasDomain = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost')
  const domain = !hasDomain ? DEFAULT_DOMAIN : first === 'index.docker.io' ? DEFAULT_DOMAIN : first
  const remainder = hasDomain ? name.slice(slash + 1) : name
  const official = domain === DEFAULT_DOMAIN && !remainder.includes('/')
  return `${domain}/${official ? OFFICIAL_PREFIX : ''}${remainder}`
}

/** Parses `name[:tag][@digest]` into its qualified form, or undefined. */
export function parseNamed(text: string): NamedRef | undefined {
  const match = REFERENCE.exec(text)
  if (!match) return undefined
  const name = qualify(match[1])
  if (name.length > MAX_NAME_LENGTH) return undefined
  const [, remainder] = splitDomain(name)
  if (remainder !== remainder.toLowerCase()) return undefined
  return { name, tag: match[2], digest: match[3] }
}

function splitDomain(name: string): [string, string] {
  const slash = name.indexOf('/')
  return [name.slice(0, slash), name.slice(slash + 1)]
}

/** Docker's short form: `alpine:3` rather than `docker.io/library/alpine:3`. */
export function familiarName(name: string): string {
  const [domain, remainder] = splitDomain(name)
  if (domain !== DEFAULT_DOMAIN) return name
  return remainder.startsWith(OFFICIAL_PREFIX) && !remainder.slice(OFFICIAL_PREFIX.length).includes('/')
    ? remainder.slice(OFFICIAL_PREFIX.length)
    : remainder
}

/** The canonical key two spellings of one reference share. */
export function referenceKey(ref: NamedRef): string {
  return ref.name + (ref.tag ? `:${ref.tag}` : '') + (ref.digest ? `@${ref.digest}` : '')
}

export function familiarString(ref: NamedRef): string {
  return familiarName(ref.name) + (ref.tag ? `:${ref.tag}` : '') + (ref.digest ? `@${ref.digest}` : '')
}

/**
 * A glob as Docker's `reference` filter reads it (Go's path.Match): `*` and
 * `?` never cross a `/`.
 */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('')
    .map(ch => (ch === '*' ? '[^/]*' : ch === '?' ? '[^/]' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('')
  return new RegExp(`^${body}$`)
}

/**
 * Docker's FamiliarMatch: a pattern matches a reference when it matches its
 * familiar string (`app:1`) or its familiar name alone (`app`).
 */
export function patternMatches(pattern: RegExp, ref: NamedRef): boolean {
  return pattern.test(familiarString(ref)) || pattern.test(familiarName(ref.name))
}

/** Reads one `refs` or `keep` entry; undefined when it is none of the accepted forms. */
export function parseRefSpec(text: string): RefSpec | undefined {
  const full = FULL_ID.exec(text)
  if (full) return { kind: 'id', text, prefix: full[1], full: true }
  if (text.includes('*') || text.includes('?')) {
    return PATTERN.test(text) ? { kind: 'pattern', text, pattern: globToRegExp(text) } : undefined
  }
  const named = parseNamed(text)
  const idPrefix = ID_PREFIX.exec(text)?.[1]
  if (named) return { kind: 'name', text, ref: named, idPrefix }
  if (idPrefix) return { kind: 'id', text, prefix: idPrefix, full: false }
  return undefined
}
