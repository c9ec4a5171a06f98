/**
 * What a long-running process must let go of when it stops, as a stack: released in reverse order
 * of acquisition (the last thing started is the first stopped: the schedule before the work it
 * feeds, the work before the connections it uses, the connections before the server that reports
 * them). Every releaser runs even when one before it threw; the first error is the one kept and
 * thrown at the end, each is reported as it happens.
 */
export class Releasers {
  readonly #stack: { readonly name: string; readonly release: () => unknown }[] = [];

  /** Registers `release` (sync or async) under `name`, to run before everything added earlier. */
  add(name: string, release: () => unknown): void {
    this.#stack.push({ name, release });
  }

  /**
   * Runs every releaser, last added first, each once (the stack is empty afterwards, so a second
   * call does nothing). `onError(name, err)` hears of each failure; the first is rethrown once all
   * have run.
   */
  async releaseAll(onError: (name: string, err: unknown) => void = () => undefined): Promise<void> {
    let first: { err: unknown } | undefined;
    while (this.#stack.length > 0) {
      const { name, release } = this.#stack.pop() as { name: string; release: () => unknown };
      try {
        await release();
      } catch (err) {
        onError(name, err);
        first ??= { err };
      }
    }
    if (first) throw first.err;
  }
}
