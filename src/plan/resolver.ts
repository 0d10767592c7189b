import { shortId } from '../common/ids'
import { parseNamed, patternMatches, referenceKey, type RefSpec } from './reference'
import { compareIds, type Image, type Refusal } from './model'
import type { Simulation } from './simulation'

/** The image a name or ID found, and the name it was found by, when the engine goes by that name. */
export type Resolution = { id: string; byName?: string } | Refusal

/** One reference a pattern matched, on the image that carries it. */
export interface Match {
  id: string
  ref: string
}

/**
 * Finds images in the simulation as it stands, so that a ref given after another
 * sees what the earlier one left: by name, ID prefix or pattern.
 */
export class Resolver {
  constructor(private readonly sim: Simulation) {}

  /** Finds an image the way the engine's GetImage does: by name first, then by ID prefix. */
  find(spec: RefSpec): Resolution {
    if (spec.kind === 'name') {
      const byName = this.findByName(spec)
      if (byName) return byName
      if (!spec.idPrefix) return notFound(spec.text)
      return this.findById(spec.idPrefix, spec.text)
    }
    if (spec.kind === 'id') return this.findById(spec.prefix, spec.text)
    return notFound(spec.text)
  }

  /**
   * Every image a spec names, for `keep`: each match, not only a unique one,
   * since an ambiguous keep must protect rather than protect nothing.
   */
  every(spec: RefSpec): string[] {
    if (spec.kind === 'pattern') return this.matches(spec.pattern).map(match => match.id)
    const found = this.find(spec)
    if ('id' in found) return [found.id]
    const prefix = spec.kind === 'id' ? spec.prefix : spec.idPrefix
    return prefix ? this.withPrefix(prefix).map(image => image.id) : []
  }

  /** Every reference the pattern matches, images in ID order. */
  matches(pattern: RegExp): Match[] {
    return this.sim
      .images()
      .sort((a, b) => compareIds(a.id, b.id))
      .flatMap(image =>
        this.sim
          .refs(image.id)
          .filter(ref => matchesText(pattern, ref))
          .map(ref => ({ id: image.id, ref }))
      )
  }

  private findByName(spec: Extract<RefSpec, { kind: 'name' }>): Resolution | undefined {
    const wanted = { ...spec.ref, tag: spec.ref.digest ? undefined : (spec.ref.tag ?? 'latest') }
    const key = referenceKey(wanted)
    for (const image of this.sim.images()) {
      const ref = this.sim.refs(image.id).find(r => {
        const parsed = parseNamed(r)
        return parsed !== undefined && referenceKey(parsed) === key
      })
      if (!ref) continue
      // The engine treats a name that is also a prefix of the image's own ID as an ID.
      return spec.idPrefix && hexOf(image.id).startsWith(spec.idPrefix)
        ? { id: image.id }
        : { id: image.id, byName: ref }
    }
    return undefined
  }

  private findById(prefix: string, text: string): Resolution {
    const matches = this.withPrefix(prefix)
    if (matches.length === 1) return { id: matches[0].id }
    if (matches.length === 0) return notFound(text)
    return {
      reason: 'ambiguous',
      message: `${text} matches ${matches.length} images: ${matches.map(m => shortId(m.id)).join(', ')}`
    }
  }

  private withPrefix(prefix: string): Image[] {
    return this.sim.images().filter(image => hexOf(image.id).startsWith(prefix))
  }
}

const notFound = (text: string): Refusal => ({ reason: 'not-found', message: `No such image: ${text}` })

const hexOf = (id: string): string => id.replace(/^sha256:/, '')

function matchesText(pattern: RegExp, text: string): boolean {
  const ref = parseNamed(text)
  return ref !== undefined && patternMatches(pattern, ref)
}
