/**
 * Which planned actions' audit lines a run writes when it does not act (dry-run, or a replica
 * that does not lead): a violation that persists is logged when it first appears, when what would
 * be done changes (its result or its statement), and then at most once per `audit.repeatAfter` —
 * not once per tick forever (1,000 disabled roles on a 2-second schedule would be 1,000 lines
 * every 2 s). A violation that goes away is forgotten, so its return is logged again. Lines of
 * actions that were carried out are never held back. The metrics count every run regardless.
 */
export class AuditRepeats {
  /** Per target/policy: action key → what was logged and when (ms since epoch). */
  readonly #logged = new Map<string, Map<string, { signature: string; at: number }>>();
  readonly #repeatAfterMs: number;
  readonly #clock: () => number;

  /** `repeatAfterMs`: how long a persisting violation stays unlogged, milliseconds. */
  constructor(repeatAfterMs: number, clock: () => number) {
    this.#repeatAfterMs = repeatAfterMs;
    this.#clock = clock;
  }

  /**
   * The actions of one run whose lines are due, and remembers them. `key` names what an action is
   * about (policy's action on a role, a database, a backend); `signature` what would be done.
   */
  due<A>(target: string, policy: string, actions: readonly A[], key: (a: A) => string, signature: (a: A) => string): A[] {
    const run = `${target}/${policy}`;
    const previous = this.#logged.get(run) ?? new Map<string, { signature: string; at: number }>();
    const next = new Map<string, { signature: string; at: number }>();
    const now = this.#clock();
    const out: A[] = [];
    for (const action of actions) {
      const k = key(action);
      const sig = signature(action);
      const before = previous.get(k) ?? next.get(k);
      if (before && before.signature === sig && now - before.at < this.#repeatAfterMs) {
        next.set(k, before);
        continue;
      }
      next.set(k, { signature: sig, at: now });
      out.push(action);
    }
    this.#logged.set(run, next);
    return out;
  }
}
