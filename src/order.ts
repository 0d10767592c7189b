import type { Image } from './model'
import type { Step } from './plan'

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
  for (const { id, parentId } of images) if (parentId) children.set(parentId, [...(children.get(parentId) ?? []), id])
  // The latest step on an image stands for all before it: each waits for the one before.
  const latest = new Map<string, number>()
  return steps.map((step, index) => {
    const related = [step.imageId, parentOf.get(step.imageId) ?? '', ...(children.get(step.imageId) ?? [])]
    const waits = new Set(related.flatMap(id => latest.get(id) ?? []))
    latest.set(step.imageId, index)
    return [...waits]
  })
}

/**
 * Runs `work` on every item, at most `width` at once, each only once the items `waits` lists
 * for it have finished; answers in the items' order. `waits` may only name earlier items.
 */
export async function runAfter<T, R>(items: readonly T[], waits: readonly number[][], width: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const slots = new Slots(width)
  const finished: Promise<R>[] = []
  for (const [index, item] of items.entries()) {
    finished.push(Promise.all(waits[index].map(earlier => finished[earlier])).then(() => slots.run(() => work(item, index))))
  }
  return Promise.all(finished)
}

/** A counting semaphore that lets waiters in the order they came. */
class Slots {
  private readonly queue: (() => void)[] = []

  constructor(private free: number) {}

  async run<R>(work: () => Promise<R>): Promise<R> {
    if (this.free > 0) this.free--
    else await new Promise<void>(resolve => this.queue.push(resolve))
    try {
      return await work()
    } finally {
      const next = this.queue.shift()
      if (next) next()
      else this.free++
    }
  }
}
