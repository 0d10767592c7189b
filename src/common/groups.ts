/**
 * Adds a value to its key's list. The list grows in place: copying it into a new list at every
 * addition would make grouping quadratic in the size of a group.
 */
export function addTo<K, V>(groups: Map<K, V[]>, key: K, value: V): void {
  const list = groups.get(key)
  if (list) list.push(value)
  else groups.set(key, [value])
}
