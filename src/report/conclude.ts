import { formatBytes } from '../common/units'
import type { Log } from '../run/log'
import type { Result } from '../run/reclaim'
import type { SkipReason } from '../plan/model'
import { totalBytes } from '../run/cache'

/** Reasons that mean a named ref could not be removed; keep rules are the user's own wish. */
const FAILURES: SkipReason[] = [
  'not-found',
  'ambiguous',
  'in-use',
  'in-use-stopped',
  'multiple-references',
  'has-children',
  'error'
]

/**
 * Warns about each named ref that was skipped. Returns the sentence to fail with, if any: an
 * engine that went away, or failed refs under fail-on-error.
 */
export function conclude(result: Result, failOnError: boolean, log: Log): string | undefined {
  const named = result.skipped.filter(skip => skip.named)
  for (const skip of named) log.warning(`${skip.ref}: ${skip.reason}: ${skip.message}`)
  const failures = named.filter(skip => FAILURES.includes(skip.reason))
  const total = totalBytes(result)
  const cache = result.cache ? `, ${result.cache.removed.length} build cache records` : ''
  log.info(
    `${result.dryRun ? 'Would reclaim' : 'Reclaimed'} ${formatBytes(total)} (${total} bytes): ` +
      `${result.deleted.length} deleted, ${result.untagged.length} untagged, ${result.skipped.length} skipped${cache}`
  )
  if (result.interrupted) return result.interrupted
  if (!failOnError || failures.length === 0) return undefined
  const refs = failures.map(f => f.ref).join(', ')
  return `${failures.length} of the named refs could not be removed (${refs}); see the warnings above.`
}
