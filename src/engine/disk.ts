import { statfs } from 'node:fs/promises'
import { InputError } from '../common/errors'
import type { Engine } from './engine'

/**
 * Bytes free for ordinary writers (what `df` shows as available) on the
 * filesystem under the engine's data root. Asked of this machine's own
 * filesystem, so only an engine on this machine can be measured.
 */
export async function freeUnderDataRoot(engine: Engine): Promise<number> {
  const root = await engine.dataRoot()
  try {
    const fs = await statfs(root)
    return fs.bavail * fs.bsize
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? String(error)
    throw new InputError(
      'min-free',
      `needs the engine's data root on this machine, but ${root} cannot be read here (${why}).`
    )
  }
}
