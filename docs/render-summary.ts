/**
 * Makes docs/summary.png, the README's picture of the job summary, from a real run:
 * starts a private engine (the test bed's), gives it sample images, runs the bundled action
 * (dist/index.js) the way the runner does, renders the summary it wrote the way GitHub
 * renders Markdown with HTML (GFM, then GitHub's markdown-body styles), and screenshots the
 * page with headless Chromium.
 *
 *   npm run build && npx tsx docs/render-summary.ts [out.png] [input=value ...]
 *
 * Inputs given as name=value replace the picture's own (dry-run=true shows a dry run).
 *
 * Needs what scripts/try.sh needs (root, the test bed's Debian packages) and Debian's
 * `chromium`; `fonts-noto-core` gives it Noto Sans, one of the fonts GitHub asks for.
 * Ages and the engine's socket path in the picture are whatever this run had.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { marked } from 'marked'
import { removeRoot } from '../testbed/bed'
import { makeRoot, startEngine, type Engine } from '../testbed/engine'
import { REPO_ROOT, runBundle } from '../testbed/runner'
import { sampleImages } from '../testbed/samples'
import { Scene } from '../testbed/scene'

const CHROMIUM = '/usr/bin/chromium'
const WIDTH = 960
const SCALE = 2

const INPUTS = {
  refs: 'webapp:pr-17\ncache/tool:1\nservice:live\nlegacy/report:2019\nwebapp:pr-99',
  prune: 'dangling',
  keep: 'legacy/*',
  'max-storage': '10MB'
}

async function summaryFromRealRun(inputs: Record<string, string>): Promise<string> {
  if (!existsSync(join(REPO_ROOT, 'dist', 'index.js')))
    throw new Error('dist/index.js is missing: run npm run build first')
  const root = await makeRoot()
  let engine: Engine | undefined
  try {
    engine = await startEngine(root)
    await sampleImages(new Scene(engine))
    const run = await runBundle(inputs, { host: engine.host })
    if (run.summary.trim() === '')
      throw new Error(`the action wrote no summary (exit ${run.code}):\n${run.stdout}\n${run.stderr}`)
    return run.summary
  } finally {
    await engine?.stop()
    if (engine) await removeRoot(root)
  }
}

/** GitHub's markdown-body styles around the rendered summary, in a frame like the job summary's. */
function page(summaryHtml: string, css: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><style>
${css}
body { margin: 0; background: #f6f8fa; }
.frame { margin: 16px; border: 1px solid #d0d7de; border-radius: 6px; background: #fff; }
.frame > header { padding: 12px 24px; border-bottom: 1px solid #d0d7de; font: 600 14px -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; color: #1f2328; }
.markdown-body { padding: 16px 24px; }
</style></head>
<body><div class="frame"><header>reclaim summary</header>
<article class="markdown-body">
${summaryHtml}
</article></div></body></html>
`
}

function chromium(args: string[], profile: string): Promise<string> {
  const flags = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--hide-scrollbars',
    `--user-data-dir=${profile}`
  ]
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, [...flags, ...args], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`chromium failed: ${error.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

/** Lays the page out once to learn its height, then screenshots exactly that. */
async function screenshot(html: string, out: string): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`)
  const dir = await mkdtemp(join(tmpdir(), 'summary-png-'))
  try {
    const file = join(dir, 'summary.html')
    const measure = `<script>addEventListener('load', () => document.fonts.ready.then(() => { document.body.dataset.height = String(Math.ceil(document.querySelector('.frame').getBoundingClientRect().bottom) + 16) }))</script>`
    await writeFile(file, html.replace('</body>', `${measure}</body>`))
    const dom = await chromium(
      ['--virtual-time-budget=2000', `--window-size=${WIDTH},400`, '--dump-dom', `file://${file}`],
      join(dir, 'p1')
    )
    const height = Number(/data-height="(\d+)"/.exec(dom)?.[1])
    if (!(height > 0)) throw new Error('could not measure the page height')
    await writeFile(file, html)
    await chromium(
      [
        `--force-device-scale-factor=${SCALE}`,
        `--window-size=${WIDTH},${height}`,
        `--screenshot=${out}`,
        `file://${file}`
      ],
      join(dir, 'p2')
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const out = args.find(arg => arg.endsWith('.png')) ?? join(REPO_ROOT, 'docs', 'summary.png')
  const extra = args
    .filter(arg => !arg.endsWith('.png'))
    .map(arg => [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)])
  const summary = await summaryFromRealRun({ ...INPUTS, ...Object.fromEntries(extra) })
  process.stdout.write(`--- job summary ---\n${summary}\n`)
  const require = createRequire(import.meta.url)
  const css = await readFile(require.resolve('github-markdown-css/github-markdown-light.css'), 'utf8')
  await screenshot(page(await marked.parse(summary, { gfm: true }), css), out)
  process.stdout.write(`wrote ${out}\n`)
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
})
