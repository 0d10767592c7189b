import { readFileSync, writeFileSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BED_ENV, mountsUnder, type Engine, type EngineInfo, type Registry } from './engine'
import { Scene } from './scene'

/** Where the shared bed is; written by globalSetup, read by test workers. */
export interface BedCoordinates {
  root: string
  host: string
  socket: string
  dataRoot: string
  registry: string
  enginePid: number
  registryPid: number
  /** Which engine this is: flavour (RECLAIM_ENGINE), version, API version and image store. */
  engine: EngineInfo
}

export interface Bed {
  root: string
  host: string
  dataRoot: string
  registry: string
  engine: EngineInfo
  scene: Scene
}

export interface BedHandles {
  root: string
  engine: Engine
  registry: Registry
}

const HANDLES_KEY = '__reclaimTestbedHandles'

type WithHandles = typeof globalThis & { [HANDLES_KEY]?: BedHandles }

export async function publishBed(handles: BedHandles): Promise<string> {
  const { root, engine, registry } = handles
  const coordinates: BedCoordinates = {
    root,
    host: engine.host,
    socket: engine.socket,
    dataRoot: engine.dataRoot,
    registry: registry.address,
    enginePid: engine.pid,
    registryPid: registry.pid,
    engine: engine.info
  }
  const file = join(root, 'bed.json')
  await writeFile(file, JSON.stringify(coordinates, null, 2))
  // globalSetup and globalTeardown share one global object; test workers only see the env.
  ;(globalThis as WithHandles)[HANDLES_KEY] = handles
  process.env[BED_ENV] = file
  return file
}

export function takeHandles(): BedHandles | undefined {
  const g = globalThis as WithHandles
  const handles = g[HANDLES_KEY]
  delete g[HANDLES_KEY]
  delete process.env[BED_ENV]
  return handles
}

function bedCoordinates(): BedCoordinates {
  const file = process.env[BED_ENV]
  if (!file) throw new Error(`${BED_ENV} is not set: run the integration project, whose globalSetup starts the bed`)
  return JSON.parse(readFileSync(file, 'utf8')) as BedCoordinates
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Tests wipe the one shared engine, so two workers would destroy each other's scenes. Jest ignores
 * maxWorkers inside a project, hence this check rather than trust in the config.
 */
function claimForThisWorker(root: string): void {
  const lock = join(root, 'worker.pid')
  try {
    writeFileSync(lock, String(process.pid), { flag: 'wx' })
    return
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  const holder = Number(readFileSync(lock, 'utf8'))
  if (holder !== process.pid && alive(holder)) {
    throw new Error(
      `the testbed is in use by jest worker ${holder}: run the integration tests in one worker (jest -i, or maxWorkers: 1 at the root of the jest config)`
    )
  }
  writeFileSync(lock, String(process.pid))
}

let shared: Bed | undefined

export function bed(): Bed {
  if (shared === undefined) {
    const c = bedCoordinates()
    claimForThisWorker(c.root)
    const scene = new Scene({ host: c.host, dataRoot: c.dataRoot, info: c.engine })
    shared = { root: c.root, host: c.host, dataRoot: c.dataRoot, registry: c.registry, engine: c.engine, scene }
  }
  return shared
}

/** Refuses to recurse into mounts: rm -r through a leftover overlay or bind mount would delete what lies beneath it. */
export async function removeRoot(root: string): Promise<void> {
  const mounts = mountsUnder(root, await readFile('/proc/self/mountinfo', 'utf8'))
  if (mounts.length > 0) {
    throw new Error(`not removing ${root}: still mounted (the engine did not unmount them):\n${mounts.join('\n')}`)
  }
  await rm(root, { recursive: true, force: true })
}
