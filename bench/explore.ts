import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { makeRoot, startEngine } from '../testbed/engine'
import { Scene } from '../testbed/scene'
import { removeRoot } from '../testbed/bed'

function sh(cmd: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((res, rej) => execFile('/bin/sh', ['-c', cmd], { env, maxBuffer: 1 << 26 }, (e, o, s) => (e ? rej(new Error(`${cmd}: ${e.message} ${s}`)) : res(o))))
}
async function t<T>(label: string, f: () => Promise<T>): Promise<T> {
  const s = performance.now(); const r = await f(); console.log(label, Math.round(performance.now() - s), 'ms'); return r
}
async function main() {
  const root = await makeRoot()
  const engine = await startEngine(root)
  console.log('engine pid', engine.pid, engine.host)
  try {
    const scene = new Scene(engine)
    const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DOCKER_HOST: engine.host, DOCKER_CONFIG: join(root, 'cfg'), HOME: process.env.HOME }
    const n = Number(process.argv[2] ?? 300)
    await t(`many(${n})`, () => scene.many('bench', n))
    await t('build 5MB', () => scene.build('bench:big-0', { bytes: 5_000_000 }))
    await t('save', () => sh(`docker save -o ${root}/a.tar bench`, env))
    console.log(await sh(`ls -la ${root}/a.tar`, env))
    await t('rmi cli', () => sh('docker rmi $(docker images -q bench) >/dev/null', env))
    await t('load', () => sh(`docker load -q -i ${root}/a.tar | wc -l`, env))
    await t('images -q', () => sh('docker images -q | wc -l', env))
    await t('df', () => sh(`curl -s --unix-socket ${engine.socket} http://x/v1.41/system/df | wc -c`, env))
    await t('df', () => sh(`curl -s --unix-socket ${engine.socket} http://x/v1.41/system/df | wc -c`, env))
    await t('images/json', () => sh(`curl -s --unix-socket ${engine.socket} 'http://x/v1.41/images/json?all=1' | wc -c`, env))
    await t('prune -a cli', () => sh('docker image prune -a -f | tail -1', env))
    await t('load', () => sh(`docker load -q -i ${root}/a.tar | wc -l`, env))
  } finally {
    await engine.stop()
    await removeRoot(root)
  }
}
main().catch(e => { console.error(e); process.exitCode = 1 })
