import * as core from '@actions/core'
import type { Log } from '../run/log'

/** Workflow commands: groups fold in the job log, warnings become annotations. */
export const actionLog: Log = {
  info: message => core.info(message),
  warning: message => core.warning(message),
  group: (name, work) => core.group(name, work)
}
