import type { EngineEvent } from '../plan/last-use-ledger'
import { EngineError } from './engine'

/** The part of one `GET /events` message read here: Docker's and Podman's compat API agree on it. */
interface EventMessage {
  Type?: string
  Action?: string
  /** The older spellings, which some engines still send beside Type and Action. */
  status?: string
  id?: string
  from?: string
  Actor?: { ID?: string; Attributes?: Record<string, string> | null }
  time?: number
  timeNano?: number
}

/**
 * One message as an event: a container's subject is the image it was made from, as the user named
 * it (`Attributes.image`, or `from`); an image's is its ID, or for a pull the name pulled.
 */
export function eventOf(message: EventMessage): EngineEvent | undefined {
  const type = message.Type ?? ''
  const action = message.Action ?? message.status ?? ''
  const subject =
    type === 'container'
      ? (message.Actor?.Attributes?.image ?? message.from ?? '')
      : (message.Actor?.ID ?? message.id ?? '')
  const time = message.timeNano ? Math.floor(message.timeNano / 1e6) : (message.time ?? 0) * 1000
  if (!type || !action || !subject || !(time > 0)) return undefined
  const name = type === 'image' && action === 'tag' ? message.Actor?.Attributes?.name : undefined
  return { type, action, subject, time, ...(name ? { name } : {}) }
}

/**
 * The engine's stream, one JSON message a line, as events. A line that is not one is skipped: a
 * message of a later API this code does not know must not stop the daemon.
 */
export async function* decodeEvents(
  stream: AsyncIterable<Buffer | string>,
  signal: AbortSignal
): AsyncGenerator<EngineEvent> {
  let pending = ''
  try {
    for await (const chunk of stream) {
      pending += chunk.toString()
      let newline: number
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline).trim()
        pending = pending.slice(newline + 1)
        const event = line ? parse(line) : undefined
        if (event) yield event
      }
    }
  } catch (error) {
    if (signal.aborted) return
    throw new EngineError(`the engine's event stream broke: ${(error as Error).message}`, undefined, true)
  }
  if (!signal.aborted) throw new EngineError('the engine closed its event stream', undefined, true)
}

function parse(line: string): EngineEvent | undefined {
  try {
    return eventOf(JSON.parse(line) as EventMessage)
  } catch {
    return undefined
  }
}
