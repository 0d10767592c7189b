import { BUSYBOX, type Scene } from './scene'

const YEARS_AGO = '2019-03-01T00:00:00Z'

/**
 * Images of every kind the action treats differently: a dangling image, an image with two tags,
 * a tagged base with a child, a years-old image, and one a running container uses. The first
 * run of scripts/try.sh and the README's summary picture both start from these.
 */
export async function sampleImages(scene: Scene): Promise<void> {
  await scene.dangling('webapp')
  await scene.build(['webapp:pr-17', 'webapp:pr-18'], { bytes: 3_000_000 })
  await scene.build('cache/base:1', { bytes: 5_000_000 })
  await scene.build('cache/tool:1', { from: 'cache/base:1', bytes: 2_000_000, labels: { stage: 'tool' } })
  await scene.old('legacy/report:2019', YEARS_AGO, 4_000_000)
  await scene.build('service:live', { from: BUSYBOX, bytes: 1_000_000 })
  await scene.runContainer('service:live', { running: true })
}
