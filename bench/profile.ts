/** Reads a V8 .cpuprofile (node --cpu-prof): where a process's CPU time went, and when. */
import { readFile } from 'node:fs/promises'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  hitCount?: number
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  /** Microseconds on the monotonic clock, the same one process.hrtime reads. */
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface ProfileSummary {
  /** Profile span, ms. */
  totalMs: number
  /** ms per category: idle (waiting for I/O), gc, program (native, compile), js: bundle, js: node internals. */
  categories: Record<string, number>
  /** Inclusive ms of the bundle's top-level evaluation (module load), when found. */
  bundleEvalMs?: number
  top: Array<{ fn: string; where: string; selfMs: number }>
  /** CPU-busy ms (not idle) between two moments, both ms on the hrtime clock. */
  busyBetween(fromMs: number, toMs: number): number
}

function category(node: ProfileNode): string {
  const { functionName, url } = node.callFrame
  if (functionName === '(idle)') return 'idle'
  if (functionName === '(garbage collector)') return 'gc'
  if (functionName === '(program)' || functionName === '(root)') return 'program (native, compile)'
  if (url.includes('dist/index.js')) return 'js: dist/index.js'
  if (url.startsWith('node:') || url === '') return 'js: node internals'
  return 'js: other'
}

export async function readProfile(file: string): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const self = new Map<number, number>()
  const stamps: Array<{ t: number; id: number; dt: number }> = []
  let t = profile.startTime
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    t += dt
    self.set(id, (self.get(id) ?? 0) + dt)
    stamps.push({ t, id, dt })
  })
  const categories: Record<string, number> = {}
  for (const [id, us] of self) {
    const c = category(byId.get(id) as ProfileNode)
    categories[c] = (categories[c] ?? 0) + us / 1000
  }
  const inclusive = new Map<number, number>()
  const incl = (id: number): number => {
    const known = inclusive.get(id)
    if (known !== undefined) return known
    const node = byId.get(id) as ProfileNode
    const sum = (self.get(id) ?? 0) + (node.children ?? []).reduce((a, c) => a + incl(c), 0)
    inclusive.set(id, sum)
    return sum
  }
  // The bundle's own top level: the anonymous function at line 0 of dist/index.js.
  const evalNodes = profile.nodes.filter(n => n.callFrame.url.endsWith('dist/index.js') && n.callFrame.lineNumber === 0 && n.callFrame.functionName === '')
  const bundleEvalMs = evalNodes.length ? evalNodes.reduce((a, n) => a + incl(n.id), 0) / 1000 : undefined
  const fnSelf = new Map<string, { fn: string; where: string; us: number }>()
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = (byId.get(id) as ProfileNode).callFrame
    if (['(idle)', '(root)'].includes(functionName)) continue
    const where = url ? `${url.replace(/^.*\//, '')}:${lineNumber + 1}` : ''
    const key = `${functionName}@${where}`
    const entry = fnSelf.get(key) ?? { fn: functionName || '(anonymous)', where, us: 0 }
    entry.us += us
    fnSelf.set(key, entry)
  }
  const top = [...fnSelf.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, 15)
    .map(e => ({ fn: e.fn, where: e.where, selfMs: Math.round(e.us / 100) / 10 }))
  return {
    totalMs: (profile.endTime - profile.startTime) / 1000,
    categories: Object.fromEntries(Object.entries(categories).map(([k, v]) => [k, Math.round(v)])),
    bundleEvalMs,
    top,
    busyBetween(fromMs: number, toMs: number): number {
      let us = 0
      for (const s of stamps) {
        const ms = s.t / 1000
        if (ms > fromMs && ms <= toMs && (byId.get(s.id) as ProfileNode).callFrame.functionName !== '(idle)') us += s.dt
      }
      return us / 1000
    }
  }
}
