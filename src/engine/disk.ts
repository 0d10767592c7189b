import { statfs } from 'node:fs/promises'
import { InputError } from '../common/errors'
import type { Engine } from './engine'

/**
 * Bytes free for ordinary writers (what `df` shows as available) on the
 * filesystem under the engine's data root. Asked of this machine's own
 * filesystem, so only an engine on this machine can be measured.
 */
export async function freeUnderDataRoot(engine: Engine, input = 'min-free'): Promise<number> {
  return (await diskUnderDataRoot(engine, input)).free
}

/**
 * The free bytes and the size of that filesystem, for targets given as a share of the disk. A data
 * root that cannot be read here is the fault of `input`, which needs it.
 */
export async function diskUnderDataRoot(engine: Engine, input: string): Promise<{ free: number; size: number }> {
  const root = await engine.dataRoot()
  try {
    const fs = await statfs(root)
    return { free: fs.bavail * fs.bsize, size: fs.blocks * fs.bsize }
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? String(error)
    throw new InputError(
      input,
      `needs the engine's data root on this machine, but ${root} cannot be read here (${why}).`
    )
  }
}
