// Run by `npm run build` after ncc: removes the native add-ons ncc copies into dist/.
//
// ssh2 (dockerode's SSH transport) loads two optional add-ons when it is required, whatever the
// endpoint: cpu-features' cpufeatures.node and its own sshcrypto.node. ncc copies them as they were
// compiled on the machine that ran `npm install`, for that machine's Node ABI, while the runner
// starts the bundle with the Node that action.yml names. They were loaded into every run, and the
// only native add-ons there when some runs ended in SIGSEGV at exit (bench/README.md; the crash
// was not reproduced since, so they are suspected, not proven). Both loads sit in try/catch in
// ssh2, which then uses its JavaScript code paths. Whether they exist also depends on whether
// node-gyp could build them, so removing them keeps dist/ the same on every machine.
import { readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'

const root = process.argv[2] ?? 'dist'
for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.node')) continue
  const file = join(entry.parentPath, entry.name)
  rmSync(file)
  console.log(`removed native add-on ${file}`)
}
