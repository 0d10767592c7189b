/** Where the core's progress goes: the runner's log, or a terminal. */
export interface Log {
  info(message: string): void
  warning(message: string): void
  group<T>(name: string, work: () => Promise<T>): Promise<T>
}
