/** A mistake in the step's inputs: its message is the one sentence the user sees. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    readonly problem: string
  ) {
    super(`Input "${input}" ${problem}`)
  }
}
