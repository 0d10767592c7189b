import { connect } from '../engine/docker'
import type { Engine } from '../engine/engine'
import { resolveEndpoint, shown } from '../engine/endpoint'
import { prunesDanglingOnly } from '../plan/plan'
import { measuresDisk, requireLocal, type Settings } from '../settings/settings'
import type { Log } from './log'
import { cacheAlone } from './cache'

/** How an entry reaches the engine its settings name; the unit tests hand in an engine of their own. */
export type OpenEngine = (settings: Settings, log: Log) => Promise<Engine>

/**
 * The engine the settings name, agreed on and answering, asked at once for the list the run reads
 * first. Job scope compares every image with its record, so it reads the whole list.
 */
export const openEngine: OpenEngine = async (settings, log) => {
  const endpoint = await resolveEndpoint(settings.dockerHost)
  if (settings.targets && measuresDisk(settings.targets)) requireLocal(endpoint.host, settings.targets)
  if (endpoint.tls && !endpoint.tls.verify) {
    const why = endpoint.tls.caRequired
      ? 'DOCKER_TLS is set without DOCKER_TLS_VERIFY'
      : `${endpoint.tls.source} has skip-tls-verify`
    log.warning(
      `TLS to ${shown(endpoint.host)} does not check the engine's certificate (${why}): anyone on the path could pose as the engine.`
    )
  }
  const firstList = cacheAlone(settings)
    ? 'cache'
    : settings.scope === 'all' && prunesDanglingOnly(settings)
      ? 'dangling'
      : 'all'
  return connect(endpoint, settings.timeout, firstList)
}
