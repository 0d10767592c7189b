import * as core from '@actions/core'

/** Where the core's progress goes: the runner's log, or a terminal. */
export interface Log {
  info(message: string): void
  warning(message: string): void
  group<T>(name: string, work: () => Promise<T>): Promise<T>
}

/** Workflow commands: groups fold in the job log, warnings become annotations. */
export const actionLog: Log = {
  info: message => core.info(message),
  warning: message => core.warning(message),
  group: (name, work) => core.group(name, work)
}

/** Plain lines for people and cron mail, kept off stdout so that stdout stays the report. */
export function terminalLog(stream: NodeJS.WritableStream, verbose: boolean): Log {
  return {
    info: message => {
      if (verbose) stream.write(`${message}\n`)
    },
    warning: message => stream.write(`warning: ${message}\n`),
    group: async (name, work) => {
      if (verbose) stream.write(`== ${name}\n`)
      return work()
    }
  }
}
