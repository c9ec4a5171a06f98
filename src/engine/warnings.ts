/**
 * Warnings about what pgwarden cannot see or do (hidden sessions, roles it never acts on, a
 * pile-up nothing can end): each given once, until its cause goes away and comes back.
 */
export class Warnings {
  readonly #given = new Set<string>();
  readonly #say: (target: string, message: string) => void;

  constructor(say: (target: string, message: string) => void) {
    this.#say = say;
  }

  /** Gives the warning `key` unless it was given and not cleared since. */
  give(key: string, target: string, message: string): void {
    if (this.#given.has(key)) return;
    this.#given.add(key);
    this.#say(target, message);
  }

  /** Its cause went away: the next `give` of `key` says it again. */
  clear(key: string): void {
    this.#given.delete(key);
  }
}
