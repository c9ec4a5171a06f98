/**
 * Readiness: per target, whether it is up (none of its snapshot kinds failed last time — a role
 * snapshot that fails counts as much as a session snapshot), whether this replica leads there,
 * and when it last succeeded. `/readyz` reads a read-only view; pgwarden_up and pgwarden_leader
 * follow it.
 */
import { errorReason } from '../db/pg-errors.js';
import type { Metrics } from '../metrics/registry.js';

/** The snapshot kinds whose failure makes a target down (DESIGN.md: pgwarden_up, /readyz). */
export type SnapshotKind = 'sessions' | 'roles' | 'locks';

/** The state /readyz reports for each target. */
export interface TargetState {
  readonly up: boolean;
  readonly leader: boolean;
  readonly lastSuccess: string | null;
  readonly lastError: string | null;
}

export class Readiness {
  readonly #states = new Map<string, TargetState>();
  /** Per target, the snapshot kinds whose last attempt failed, with the reason. */
  readonly #failing = new Map<string, Map<SnapshotKind, string>>();
  readonly #metrics: Metrics;
  readonly #clock: () => number;

  constructor(targets: readonly string[], metrics: Metrics, clock: () => number) {
    this.#metrics = metrics;
    this.#clock = clock;
    for (const target of targets) this.#states.set(target, { up: false, leader: false, lastSuccess: null, lastError: null });
  }

  /** Each target's state, for /readyz and /healthz (a view: never written through). */
  get view(): ReadonlyMap<string, TargetState> {
    return this.#states;
  }

  /** Records how a snapshot of `kind` went on `target` (`err` when it failed). */
  record(target: string, kind: SnapshotKind, err?: unknown): void {
    const failing = this.#failing.get(target) ?? new Map<SnapshotKind, string>();
    this.#failing.set(target, failing);
    if (err === undefined) failing.delete(kind);
    else failing.set(kind, `${kind} snapshot: ${errorReason(err)}`);
    const previous = this.#states.get(target);
    const up = failing.size === 0;
    this.#states.set(target, {
      up,
      leader: previous?.leader ?? false,
      lastSuccess: up ? new Date(this.#clock()).toISOString() : (previous?.lastSuccess ?? null),
      lastError: up ? null : [...failing.values()].join('; '),
    });
    this.#metrics.up.set({ target }, up ? 1 : 0);
  }

  /** Whether the last snapshot of `kind` on `target` failed. */
  failing(target: string, kind: SnapshotKind): boolean {
    return this.#failing.get(target)?.has(kind) === true;
  }

  /** Records whether this replica leads (enforces on) a target. */
  setLeader(target: string, leader: boolean): void {
    const previous = this.#states.get(target);
    if (previous) this.#states.set(target, { ...previous, leader });
    this.#metrics.leader.set({ target }, leader ? 1 : 0);
  }

  leads(target: string): boolean {
    return this.#states.get(target)?.leader === true;
  }
}
