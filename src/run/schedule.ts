/**
 * When the host daemon checks its targets: once at the start, every `everyMs`, and after events
 * that add to image storage once they have paused for `quietMs`, so that a burst of pulls costs
 * one check. Checks never overlap: a reason that comes during one runs one more after it.
 */
export class CheckSchedule {
  private timer?: NodeJS.Timeout
  private quiet?: NodeJS.Timeout
  private running?: Promise<void>
  private again = false
  private stopped = false

  constructor(
    private readonly check: () => Promise<void>,
    private readonly everyMs: number,
    private readonly quietMs: number
  ) {}

  start(): void {
    this.timer = setInterval(() => this.now(), this.everyMs)
    this.now()
  }

  /** Something was added: check once the engine has been quiet for a while. */
  nudge(): void {
    if (this.stopped) return
    clearTimeout(this.quiet)
    this.quiet = setTimeout(() => this.now(), this.quietMs)
  }

  /** No more checks; resolves once the one under way, if any, has ended. */
  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    clearTimeout(this.quiet)
    await this.running
  }

  private now(): void {
    if (this.stopped) return
    if (this.running) {
      this.again = true
      return
    }
    this.running = this.check().finally(() => {
      this.running = undefined
      if (this.again && !this.stopped) {
        this.again = false
        this.now()
      }
    })
  }
}
