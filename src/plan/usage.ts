import { addTo } from '../common/groups'
import { familiarName, parseNamed } from './reference'
import { mergeLastUse } from './last-use-ledger'
import { compareIds, type EngineState, type Image } from './model'

/** What "recent" means for keep-duration and keep-last. */
export type AgeBasis = 'created' | 'last-used'

/**
 * When each image was last used: the latest of its creation, its last tag
 * (where the engine records one) and the creation of the newest container
 * made from it, running or not. Building another image on it is no use of
 * it: the child holds the shared layers whatever happens to the parent.
 * Where the host daemon kept a ledger, the latest of the two: the engine
 * forgets a container once it is removed, the ledger does not.
 */
export function lastUse(state: EngineState): Map<string, number> {
  const used = new Map(
    state.images.map(image => {
      const created = state.createdAt?.get(image.id) ?? image.created
      return [image.id, Math.max(created, state.lastTagged?.get(image.id) ?? 0)]
    })
  )
  for (const container of state.containers) {
    const known = used.get(container.imageId)
    if (known !== undefined && container.created > known) used.set(container.imageId, container.created)
  }
  return state.recordedUse ? mergeLastUse(used, state.recordedUse) : used
}

/**
 * The images `keep-last` protects: in every repository, the `count` most
 * recent images that carry a tag or digest of it, each with the repository
 * that keeps it (as the user would write it).
 */
export function newestPerRepository(
  images: Image[],
  count: number,
  recency: (id: string) => number
): Map<string, string> {
  const members = new Map<string, Image[]>()
  for (const image of images) {
    for (const repo of repositories(image)) addTo(members, repo, image)
  }
  const kept = new Map<string, string>()
  for (const [repo, list] of [...members].sort(([a], [b]) => a.localeCompare(b))) {
    list.sort((a, b) => recency(b.id) - recency(a.id) || compareIds(a.id, b.id))
    for (const image of list.slice(0, count)) if (!kept.has(image.id)) kept.set(image.id, familiarName(repo))
  }
  return kept
}

function repositories(image: Image): Set<string> {
  const names = [...image.tags, ...image.digests].map(ref => parseNamed(ref)?.name)
  return new Set(names.filter((name): name is string => name !== undefined))
}
