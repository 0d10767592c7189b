import { addTo } from '../common/groups'
import { shortId } from '../common/ids'
import { Ledger } from './ledger'
import { parseNamed } from './reference'
import type { Container, EngineState, Image, ImageStore, Refusal, SkipReason } from './model'
import type { LayerHolds } from './cache-budget'

/** What one DELETE would do, as the engine's own rules decide it. */
export type Outcome =
  { ok: true; untagged: string[]; deleted: boolean; pruned: string[]; freed: string[] } | ({ ok: false } & Refusal)

interface Node {
  image: Image
  refs: string[]
  /** Images built on it that are still there. */
  children: number
}

/** Where the stores' delete rules part (measured in testbed/ENGINES.md). */
export interface Rules {
  /** An image other images are built on cannot be deleted by ID (graph drivers only). */
  childrenBlock: boolean
  /**
   * Losing its last tag, an image other images are built on stays, untagged (graph drivers; the
   * containerd store keeps it as a dangling image though it answers Deleted).
   */
  childrenKeep: boolean
  /**
   * On graph drivers a digest reference is a name of its own. On containerd and Podman it is a
   * view: each tagged repository's view of the image's own digest, which never counts as a
   * reference and goes away, unreported, with the repository's last tag.
   */
  digestViews: boolean
  /** A forced removal of an image a container uses only untags it (containerd). */
  forceOnlyUntagsUsed: boolean
  /** A forced removal of an image a stopped container uses deletes the container too (Podman). */
  forceDeletesContainers: boolean
  /** The engine deletes untagged parents along with an image whatever noprune says (Podman). */
  prunesParents: boolean
  /**
   * A digest reference is refused while the image has more than one tag: the engine untags only a
   * name it was asked by, and a digest is none of its names (Podman).
   */
  refusesDigestOfTagged: boolean
  /** The engine's own words for its refusals, which a skip repeats. */
  says: Refusals
}

/** What a store answers when it refuses a removal. */
interface Refusals {
  /** Deleting by ID, unforced, an image with more than one name. */
  multipleReferences(id: string, names: string[]): string
  /** Removing, unforced, the last name of an image a stopped container uses. */
  usedByName(ref: string, id: string, container: Container): string
  /** Deleting by ID, unforced, an image a stopped container uses. */
  usedById(id: string, container: Container): string
}

/** moby's words (daemon/images/image_delete.go); its containerd store words one of them its own way. */
const MOBY: Refusals = {
  multipleReferences: id =>
    `unable to delete ${shortId(id)} (must be forced) - image is referenced in multiple repositories`,
  usedByName: (ref, id, container) =>
    `unable to remove repository reference "${ref}" (must force) - container ${shortId(container.id)} is using its referenced image ${shortId(id)}`,
  usedById: (id, container) =>
    `unable to delete ${shortId(id)} (must be forced) - image is being used by stopped container ${shortId(container.id)}`
}

/** Podman's libimage, which names the container in full and the image as it was asked for. */
const PODMAN: Refusals = {
  multipleReferences: (id, names) =>
    `unable to delete image "${id.replace(/^sha256:/, '')}" by ID with more than one tag (${names.join(' ')}): please force removal`,
  usedByName: (ref, _id, container) => podmanInUse(ref, container),
  usedById: (id, container) => podmanInUse(shortId(id), container)
}

const RULES: Record<ImageStore, Rules> = {
  graphdriver: {
    childrenBlock: true,
    childrenKeep: true,
    digestViews: false,
    forceOnlyUntagsUsed: false,
    forceDeletesContainers: false,
    prunesParents: false,
    refusesDigestOfTagged: false,
    says: MOBY
  },
  containerd: {
    childrenBlock: false,
    childrenKeep: true,
    digestViews: true,
    forceOnlyUntagsUsed: true,
    forceDeletesContainers: false,
    prunesParents: false,
    refusesDigestOfTagged: false,
    says: {
      ...MOBY,
      usedByName: (ref, id, container) =>
        `unable to delete ${ref} (must be forced) - container ${shortId(container.id)} is using its referenced image ${shortId(id)}`
    }
  },
  podman: {
    childrenBlock: false,
    childrenKeep: false,
    digestViews: true,
    forceOnlyUntagsUsed: false,
    forceDeletesContainers: true,
    prunesParents: true,
    refusesDigestOfTagged: true,
    says: PODMAN
  }
}

const repoOf = (ref: string): string => parseNamed(ref)?.name ?? ref
const isDigestRef = (ref: string): boolean => ref.includes('@')

/**
 * A copy of the engine's image graph that removals are played on before any
 * is sent, so the plan knows each request's effect and the bytes it frees.
 * The graph driver rules mirror moby's daemon/images/image_delete.go
 * (ImageDelete, imageDeleteHelper, checkImageDeleteConflict); the other
 * stores differ where RULES says. Parent pruning on graph drivers is left to
 * the caller, which sends it as requests of its own.
 */
export class Simulation {
  private readonly nodes = new Map<string, Node>()
  private readonly containers = new Map<string, Container[]>()
  private readonly ledger: Ledger
  /** The store's delete rules, which the planner's own choices follow too. */
  readonly rules: Readonly<Rules>

  constructor(state: EngineState) {
    this.rules = RULES[state.store ?? 'graphdriver']
    for (const image of state.images) {
      this.nodes.set(image.id, { image, refs: [...image.tags, ...image.digests], children: 0 })
    }
    for (const image of state.images) {
      const parent = this.nodes.get(image.parentId)
      if (parent) parent.children++
    }
    for (const container of state.containers) addTo(this.containers, container.imageId, container)
    this.ledger = new Ledger(state)
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

  /** The references the store counts: its digest views are not names of their own. */
  private counted(refs: string[]): string[] {
    return this.rules.digestViews ? refs.filter(ref => !isDigestRef(ref)) : refs
  }

  /** The references removing it by name goes through, one by one: a store's digest views go with their tags. */
  names(id: string): string[] {
    return this.counted(this.refs(id))
  }

  /** Whether the engine lets this image go by ID unforced, as far as its references go. */
  singleReference(id: string): boolean {
    return isSingleReference(this.counted(this.refs(id)))
  }

  /** Whether nothing names it any more. */
  unnamed(id: string): boolean {
    return this.counted(this.refs(id)).length === 0
  }

  hasChildren(id: string): boolean {
    return (this.nodes.get(id)?.children ?? 0) > 0
  }

  parent(id: string): string {
    return this.nodes.get(id)?.image.parentId ?? ''
  }

  usedBy(id: string): Container[] {
    return this.containers.get(id) ?? []
  }

  layerSize(chainId: string): number {
    return this.ledger.size(chainId)
  }

  /** Bytes that deleting this image alone would free now: its layers nothing else holds. */
  uniqueBytes(id: string): number {
    return this.ledger.unique(id)
  }

  /** The ledger's view of the layers the build cache holds too, for its records' part in a target (cache-budget.ts). */
  layerHolds(): LayerHolds {
    return {
      heldAlone: chainId => this.ledger.heldAlone(chainId),
      releaseHold: chainId => this.ledger.releaseHold(chainId)
    }
  }

  /** Bytes of every layer some image or container holds: the image storage on disk. */
  storedBytes(): number {
    return this.ledger.held()
  }

  /** Bytes of those layers the build cache holds too, which would stay if every image went. */
  cacheHeldBytes(): number {
    return this.ledger.heldByCache()
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
    const refs = this.counted(this.refs(id))
    const used = this.usedBy(id).length > 0
    if (byName) return used && this.lastNameGoes(id, byName)
    return used || (refs.length > 0 && !isSingleReference(refs))
  }

  /** Whether removing this name leaves the image unnamed. */
  private lastNameGoes(id: string, ref: string): boolean {
    const refs = this.counted(this.refs(id))
    if (!this.rules.digestViews) return isSingleReference(refs)
    return refs.every(r => this.namedBy(r, ref))
  }

  /** On a store with digest views, a digest reference stands for every tag of its repository. */
  private namedBy(tag: string, ref: string): boolean {
    return tag === ref || (this.rules.digestViews && isDigestRef(ref) && repoOf(tag) === repoOf(ref))
  }

  /** `DELETE /images/<ref>` where ref is a tag or digest the image carries. */
  removeByName(id: string, ref: string, force: boolean): Outcome {
    const node = this.nodes.get(id)
    if (!node) return this.notFound(ref)
    if (this.rules.refusesDigestOfTagged && isDigestRef(ref) && this.counted(node.refs).length > 1) {
      return conflict('error', `${ref}: tag not known`)
    }
    const stopped = this.usedBy(id)[0]
    const last = this.lastNameGoes(id, ref)
    if (!force && last && stopped) return conflict('in-use-stopped', this.rules.says.usedByName(ref, id, stopped))
    const untagged = this.untag(node, ref)
    const keptByChildren = node.children > 0 && this.rules.childrenKeep
    const keptByContainer = stopped !== undefined && (!force || this.rules.forceOnlyUntagsUsed)
    if (node.refs.length > 0 || keptByChildren || keptByContainer)
      return { ok: true, untagged, deleted: false, pruned: [], freed: [] }
    return this.deleted(node, untagged)
  }

  /** `DELETE /images/sha256:<id>`. */
  removeById(id: string, force: boolean): Outcome {
    const node = this.nodes.get(id)
    if (!node) return this.notFound(id)
    const untagged: string[] = []
    if (isSingleReference(this.counted(node.refs))) {
      const found = this.conflictOf(node, force, false)
      if (found) return found
      untagged.push(...this.untagAll(node))
    }
    const found = this.conflictOf(node, force, true)
    if (found) return found
    untagged.push(...this.untagAll(node))
    if (this.usedBy(id).length > 0 && this.rules.forceOnlyUntagsUsed)
      return { ok: true, untagged, deleted: false, pruned: [], freed: [] }
    return this.deleted(node, untagged)
  }

  private deleted(node: Node, untagged: string[]): Outcome {
    const freed = this.drop(node)
    const pruned = this.rules.prunesParents ? this.pruneParentsOf(node.image) : []
    for (const id of pruned) freed.push(...this.ledger.release(id))
    return { ok: true, untagged, deleted: true, pruned, freed }
  }

  /** Podman's cascade: each parent that is left untagged, childless and unused goes too. */
  private pruneParentsOf(image: Image): string[] {
    const pruned: string[] = []
    for (let parent = this.nodes.get(image.parentId); parent; parent = this.nodes.get(parent.image.parentId)) {
      const id = parent.image.id
      if (this.counted(parent.refs).length > 0 || parent.children > 0 || this.usedBy(id).length > 0) break
      this.dropRecord(parent)
      pruned.push(id)
    }
    return pruned
  }

  private untagAll(node: Node): string[] {
    const refs = node.refs.splice(0)
    return this.rules.digestViews ? refs.filter(ref => !isDigestRef(ref)) : refs
  }

  private conflictOf(node: Node, force: boolean, countRefs: boolean): Outcome | undefined {
    const id = node.image.id
    if (node.children > 0 && this.rules.childrenBlock) {
      return conflict(
        'has-children',
        `unable to delete ${shortId(id)} (cannot be forced) - image has dependent child images`
      )
    }
    if (force) return undefined
    if (countRefs && this.counted(node.refs).length > 0)
      return conflict('multiple-references', this.rules.says.multipleReferences(id, this.counted(node.refs)))
    const stopped = this.usedBy(id)[0]
    if (stopped) return conflict('in-use-stopped', this.rules.says.usedById(id, stopped))
    return undefined
  }

  /**
   * Untags one reference; when the last tag of a repository goes, the
   * engine also drops that repository's digest references.
   */
  private untag(node: Node, ref: string): string[] {
    if (this.rules.digestViews) return this.untagViews(node, ref)
    node.refs = node.refs.filter(r => r !== ref)
    const untagged = [ref]
    if (isDigestRef(ref)) return untagged
    const sameRepoDigests = this.orphanedDigests(node, repoOf(ref))
    return [...untagged, ...sameRepoDigests]
  }

  /**
   * containerd and Podman: a digest reference takes every tag of its
   * repository (it names them all), and the views vanish with the last
   * tag, unreported.
   */
  private untagViews(node: Node, ref: string): string[] {
    const repo = repoOf(ref)
    const untagged = isDigestRef(ref) ? node.refs.filter(r => !isDigestRef(r) && repoOf(r) === repo) : [ref]
    node.refs = node.refs.filter(r => r !== ref && !untagged.includes(r))
    this.orphanedDigests(node, repo)
    return untagged
  }

  /** Drops the repository's digest references once it has no tag left; returns them. */
  private orphanedDigests(node: Node, repo: string): string[] {
    if (node.refs.some(r => !isDigestRef(r) && repoOf(r) === repo)) return []
    const digests = node.refs.filter(r => isDigestRef(r) && repoOf(r) === repo)
    node.refs = node.refs.filter(r => !digests.includes(r))
    return digests
  }

  /** Deletes the image record and returns the layers nobody holds any more. */
  private drop(node: Node): string[] {
    this.dropRecord(node)
    return this.ledger.release(node.image.id)
  }

  private dropRecord(node: Node): void {
    node.refs = []
    this.nodes.delete(node.image.id)
    const parent = this.nodes.get(node.image.parentId)
    if (parent) parent.children--
  }

  private notFound(ref: string): Outcome {
    return conflict('not-found', `No such image: ${ref}`)
  }
}

function conflict(reason: SkipReason, message: string): Outcome {
  return { ok: false, reason, message }
}

function podmanInUse(ref: string, container: Container): string {
  return `image ${ref} is in use: image used by ${container.id}: image is in use by a container: consider listing external containers and force-removing image`
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
