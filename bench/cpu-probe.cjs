// Loaded into dry runs by bench/run.ts (NODE_OPTIONS=--require): at exit, the CPU time the action's
// process used, user and system, in microseconds. Unlike its wall-clock time, it leaves out what
// the process waited for (the engine's own work, other processes on a shared machine).
process.on('exit', () => {
  const { user, system } = process.cpuUsage()
  process.stderr.write(`\nBENCHCPU ${user + system}\n`)
})
