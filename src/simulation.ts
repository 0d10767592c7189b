import { parseNamed } from './reference'
import type { Container, EngineState, Image, SkipReason } from './model'

/** What one DELETE would do, as the engine's own rules decide it. */
export type Outcome =
  | { ok: true; untagged: string[]; deleted: boolean; freed: string[] }
  | { ok: false; reason: SkipReason; message: string }

interface Node {
  image: Image
  refs: string[]
  children: Set<string>
}

export const shortId = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12)

const repoOf = (ref: string): string => parseNamed(ref)?.name ?? ref
const isDigestRef = (ref: string): boolean => ref.includes('@')

/**
 * A copy of the engine's image graph that removals are played on before any
 * is sent, so the plan knows each request's effect and the bytes it frees.
 * The rules mirror moby's daemon/images/image_delete.go (ImageDelete,
 * imageDeleteHelper, checkImageDeleteConflict); parent pruning is left to
 * the caller, which sends it as requests of its own.
 */
export class Simulation {
  private readonly nodes = new Map<string, Node>()
  private readonly containers = new Map<string, Container[]>()
  private readonly holders = new Map<string, number>()
  private readonly sizes = new Map<string, number>()

  constructor(private readonly state: EngineState) {
    for (const image of state.images) {
      this.nodes.set(image.id, { image, refs: [...image.tags, ...image.digests], children: new Set() })
    }
    for (const image of state.images) this.nodes.get(image.parentId)?.children.add(image.id)
    for (const container of state.containers) {
      this.containers.set(container.imageId, [...(this.containers.get(container.imageId) ?? []), container])
      this.hold(container.imageId)
    }
    for (const image of state.images) this.hold(image.id)
  }

  private hold(imageId: string): void {
    for (const layer of this.state.layers.get(imageId) ?? []) {
      this.sizes.set(layer.chainId, layer.size)
      this.holders.set(layer.chainId, (this.holders.get(layer.chainId) ?? 0) + 1)
    }
  }

  alive(id: string): boolean {
    return this.nodes.has(id)
  }

  images(): Image[] {
    return [...this.nodes.values()].map(node => node.image)
  }

  refs(id: string): string[] {
    return this.nodes.get(id)?.refs ?? []
  }

  tags(id: string): string[] {
    return this.refs(id).filter(ref => !isDigestRef(ref))
  }

  hasChildren(id: string): boolean {
    return (this.nodes.get(id)?.children.size ?? 0) > 0
  }

  parent(id: string): string {
    return this.nodes.get(id)?.image.parentId ?? ''
  }

  usedBy(id: string): Container[] {
    return this.containers.get(id) ?? []
  }

  layerSize(chainId: string): number {
    return this.sizes.get(chainId) ?? 0
  }

  /** Bytes that deleting this image alone would free now: its layers nothing else holds. */
  uniqueBytes(id: string): number {
    const own = new Set((this.state.layers.get(id) ?? []).map(layer => layer.chainId))
    return [...own].filter(chainId => this.holders.get(chainId) === 1).reduce((sum, chainId) => sum + this.layerSize(chainId), 0)
  }

  /** Bytes of every layer some image or container holds: the image storage on disk. */
  storedBytes(): number {
    let total = 0
    for (const [chainId, holders] of this.holders) if (holders > 0) total += this.layerSize(chainId)
    return total
  }

  depth(id: string): number {
    let depth = 0
    for (let p = this.parent(id); p && this.nodes.has(p); p = this.parent(p)) depth++
    return depth
  }

  /**
   * Whether the engine would refuse this removal unless forced. Force is sent
   * only then, so that an image which gains a container or a tag between the
   * plan and the request is refused by the engine instead of forced away.
   */
  needsForce(id: string, byName?: string): boolean {
    const refs = this.refs(id)
    const used = this.usedBy(id).length > 0
    if (byName) return used && isSingleReference(refs)
    return used || (refs.length > 0 && !isSingleReference(refs))
  }

  /** `DELETE /images/<ref>` where ref is a tag or digest the image carries. */
  removeByName(id: string, ref: string, force: boolean): Outcome {
    const node = this.nodes.get(id)
    if (!node) return this.notFound(ref)
    const stopped = this.usedBy(id)[0]
    if (!force && isSingleReference(node.refs) && stopped) {
      return conflict(
        'in-use-stopped',
        `unable to remove repository reference "${ref}" (must force) - container ${shortId(stopped.id)} is using its referenced image ${shortId(id)}`
      )
    }
    const untagged = this.untag(node, ref)
    if (node.refs.length > 0 || node.children.size > 0 || (stopped && !force)) {
      return { ok: true, untagged, deleted: false, freed: [] }
    }
    return { ok: true, untagged, deleted: true, freed: this.drop(node) }
  }

  /** `DELETE /images/sha256:<id>`. */
  removeById(id: string, force: boolean): Outcome {
    const node = this.nodes.get(id)
    if (!node) return this.notFound(id)
    const untagged: string[] = []
    if (isSingleReference(node.refs)) {
      const found = this.conflictOf(node, force, false)
      if (found) return found
      untagged.push(...node.refs.splice(0))
    }
    const found = this.conflictOf(node, force, true)
    if (found) return found
    untagged.push(...node.refs.splice(0))
    return { ok: true, untagged, deleted: true, freed: this.drop(node) }
  }

  private conflictOf(node: Node, force: boolean, countRefs: boolean): Outcome | undefined {
    const id = node.image.id
    if (node.children.size > 0) {
      return conflict('has-children', `unable to delete ${shortId(id)} (cannot be forced) - image has dependent child images`)
    }
    if (force) return undefined
    if (countRefs && node.refs.length > 0) {
      return conflict(
        'multiple-references',
        `unable to delete ${shortId(id)} (must be forced) - image is referenced in multiple repositories`
      )
    }
    const stopped = this.usedBy(id)[0]
    if (stopped) {
      return conflict(
        'in-use-stopped',
        `unable to delete ${shortId(id)} (must be forced) - image is being used by stopped container ${shortId(stopped.id)}`
      )
    }
    return undefined
  }

  /**
   * Untags one reference; when the last tag of a repository goes, the
   * engine also drops that repository's digest references.
   */
  private untag(node: Node, ref: string): string[] {
    node.refs = node.refs.filter(r => r !== ref)
    const untagged = [ref]
    if (isDigestRef(ref)) return untagged
    const repo = repoOf(ref)
    if (node.refs.some(r => !isDigestRef(r) && repoOf(r) === repo)) return untagged
    const sameRepoDigests = node.refs.filter(r => isDigestRef(r) && repoOf(r) === repo)
    node.refs = node.refs.filter(r => !sameRepoDigests.includes(r))
    return [...untagged, ...sameRepoDigests]
  }

  /** Deletes the image record and returns the layers nobody holds any more. */
  private drop(node: Node): string[] {
    const id = node.image.id
    node.refs = []
    this.nodes.delete(id)
    this.nodes.get(node.image.parentId)?.children.delete(id)
    const freed: string[] = []
    for (const layer of [...(this.state.layers.get(id) ?? [])].reverse()) {
      const left = (this.holders.get(layer.chainId) ?? 1) - 1
      this.holders.set(layer.chainId, left)
      if (left === 0) freed.push(layer.chainId)
    }
    return freed
  }

  private notFound(ref: string): Outcome {
    return conflict('not-found', `No such image: ${ref}`)
  }
}

function conflict(reason: SkipReason, message: string): Outcome {
  return { ok: false, reason, message }
}

/**
 * moby's isSingleReference: at most one tag, and any digest references in
 * that tag's repository only. Such an image may be removed by ID unforced.
 */
export function isSingleReference(refs: string[]): boolean {
  if (refs.length <= 1) return refs.length === 1
  const tags = refs.filter(r => !isDigestRef(r))
  if (tags.length > 1) return false
  const digestRepos = new Set(refs.filter(isDigestRef).map(repoOf))
  const single = tags[0] ?? refs[0]
  return digestRepos.size === 1 && digestRepos.has(repoOf(single))
}
