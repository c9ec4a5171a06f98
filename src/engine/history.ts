/**
 * What the daemon remembers between runs of a policy on a target: the backends it cancelled (to
 * escalate to terminate when one is still over the limit later) and the role/database pairs
 * whose REVOKE CONNECT proved ineffective (not planned again).
 */
import type { SessionActionPlan } from '../actions/types.js';
import { backendKey, type PolicyHistory } from '../policies/types.js';

/** A cancel is forgotten after a day: by then the backend is long gone or another matter. */
const FORGET_CANCELLED_AFTER_MS = 24 * 3600 * 1000;

export class RunHistory {
  /** Per target/policy: backend key → when this policy cancelled it (ms since epoch). */
  readonly #cancelled = new Map<string, Map<string, number>>();
  /** Per target/policy: role/database pairs whose revoke_connect was reported ineffective. */
  readonly #ineffective = new Map<string, Set<string>>();
  readonly #clock: () => number;

  constructor(clock: () => number) {
    this.#clock = clock;
  }

  /** The history a policy's evaluate sees. */
  of(target: string, policy: string): PolicyHistory {
    return { cancelled: this.#cancelled.get(`${target}/${policy}`) ?? new Map<string, number>(), now: this.#clock() };
  }

  /** Keeps which backends were cancelled; forgets backends no longer violating. */
  rememberCancels(target: string, policy: string, actions: readonly SessionActionPlan[]): void {
    const key = `${target}/${policy}`;
    const previous = this.#cancelled.get(key) ?? new Map<string, number>();
    const next = new Map<string, number>();
    const now = this.#clock();
    for (const a of actions) {
      const id = backendKey(a.violation.session);
      const since = previous.get(id);
      if (since !== undefined && now - since < FORGET_CANCELLED_AFTER_MS) next.set(id, since);
      else if (a.action === 'cancel' && a.result === 'done') next.set(id, now);
    }
    this.#cancelled.set(key, next);
  }

  /** The role/database pairs (`role/database`) whose revoke was ineffective, for a policy on a target. */
  ineffective(target: string, policy: string): Set<string> {
    const key = `${target}/${policy}`;
    let set = this.#ineffective.get(key);
    if (!set) {
      set = new Set<string>();
      this.#ineffective.set(key, set);
    }
    return set;
  }
}
