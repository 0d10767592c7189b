import type { Log } from '../run/log'

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
