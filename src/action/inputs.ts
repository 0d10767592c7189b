import * as core from '@actions/core'
import { credentials } from '../engine/endpoint'
import { INPUT_NAMES, parseSettings, type RawInputs, type Settings } from '../settings/settings'

/** The step's inputs as the runner passes them, checked by the parser the CLI shares. */
export function getSettings(now = Date.now()): Settings {
  const raw = Object.fromEntries(INPUT_NAMES.map(name => [name, core.getInput(name)])) as RawInputs
  // Passwords in the endpoint are masked before parsing, which may fail and print the input.
  for (const secret of [...credentials(raw['docker-host']), ...credentials(process.env.DOCKER_HOST)])
    core.setSecret(secret)
  return parseSettings(raw, now)
}
