import { execFile } from 'node:child_process'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** A filesystem of a known, small size, for tests whose answer depends on free space. */
export interface SmallFilesystem {
  /** Where it is mounted. */
  path: string
  unmount(): Promise<void>
}

/**
 * Why a loop-mounted filesystem cannot be made here, or undefined when it
 * can: a container without loop devices or mount rights cannot.
 */
export async function loopMountUnavailable(): Promise<string | undefined> {
  try {
    await run('losetup', ['--find'])
    return undefined
  } catch (error) {
    return `no free loop device (losetup --find: ${String((error as Error).message).trim()})`
  }
}

/**
 * Formats an ext4 image file of `bytes` in `root` and mounts it on
 * `root/data` (where the bed's engines keep their data), so that free space
 * is the engine's alone and does not move with the rest of the machine.
 */
export async function smallFilesystem(root: string, bytes: number): Promise<SmallFilesystem> {
  const image = join(root, 'fs.img')
  const path = join(root, 'data')
  await run('truncate', ['-s', String(bytes), image])
  // No reserved blocks: what df calls available is then all that is free.
  await run('mkfs.ext4', ['-q', '-F', '-m', '0', image])
  await mkdir(path, { recursive: true })
  await run('mount', ['-o', 'loop', image, path])
  return {
    path,
    async unmount() {
      // The loop device goes with the mount (mount -o loop sets autoclear). A podman engine's
      // stop() unmounts whatever is left under its root, this mount included.
      const mounted = await run('mountpoint', ['-q', path]).then(
        () => true,
        () => false
      )
      if (mounted) await run('umount', [path])
      await rm(image, { force: true })
    }
  }
}
