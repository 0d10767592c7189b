import { addTo } from '../common/groups'
import type { Image } from '../plan/model'
import type { Step } from '../plan/plan'

/**
 * For each step of a plan, the earlier steps it must wait for when requests run side by side.
 *
 * The plan's order is right for one request at a time. Two steps may overlap only when neither
 * can change what the other does: they touch different images, and neither image is the other's
 * parent. A parent's deletion is refused while a child exists, and untagging its last tag deletes
 * it once no child is left, so steps on a parent and on its children keep their order.
 */
export function prerequisites(steps: readonly Step[], images: readonly Image[]): number[][] {
  const parentOf = new Map(images.map(image => [image.id, image.parentId]))
  const children = new Map<string, string[]>()
  for (const { id, parentId } of images) if (parentId) addTo(children, parentId, id)
  // Waiting for the latest step on an image is enough: that step already waits for the one before.
  const latest = new Map<string, number>()
  return steps.map((step, index) => {
    const related = [step.imageId, parentOf.get(step.imageId) ?? '', ...(children.get(step.imageId) ?? [])]
    // Distinct images have distinct latest steps, so the list has no duplicates.
    const waits = related.flatMap(id => latest.get(id) ?? [])
    latest.set(step.imageId, index)
    return waits
  })
}

/**
 * Runs `work` on every item, at most `width` at once, each only once the items `waits` lists
 * for it have finished; answers in the items' order. `waits` may only name earlier items. Items
 * start in the order they became ready, and no promise is made for an item until it starts: a
 * pending promise for each item of a large plan would raise peak memory (bench/README.md).
 */
export function runAfter<T, R>(
  items: readonly T[],
  waits: readonly number[][],
  width: number,
  work: (item: T, index: number) => Promise<R>
): Promise<R[]> {
  const results: R[] = new Array(items.length)
  const unfinished = waits.map(earlier => earlier.length)
  const dependents = new Map<number, number[]>()
  waits.forEach((earlier, index) => earlier.forEach(e => addTo(dependents, e, index)))
  const ready = unfinished.flatMap((count, index) => (count === 0 ? [index] : []))
  let next = 0
  let running = 0
  let finished = 0
  return new Promise((resolve, reject) => {
    const start = (): void => {
      for (; running < width && next < ready.length; running++) {
        const index = ready[next++]
        work(items[index], index).then(result => {
          results[index] = result
          running--
          finished++
          for (const later of dependents.get(index) ?? []) if (--unfinished[later] === 0) ready.push(later)
          if (finished === items.length) resolve(results)
          else start()
        }, reject)
      }
    }
    if (items.length === 0) resolve(results)
    start()
  })
}
