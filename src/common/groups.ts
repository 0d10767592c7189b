/**
 * Adds a value to its key's list. Lists grow in place: building each one anew by copying made
 * grouping quadratic in a group's size (3,000 values under one key, measured with node: 26 ms
 * against 0.3 ms).
 */
export function addTo<K, V>(groups: Map<K, V[]>, key: K, value: V): void {
  const list = groups.get(key)
  if (list) list.push(value)
  else groups.set(key, [value])
}
