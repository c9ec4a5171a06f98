/**
 * Reading the snapshots of a target: sessions, roles, and the lock graph when someone waits —
 * each recorded (gauges, readiness, warnings) as it is taken. A run asks for them lazily, and
 * every policy due at one scheduler tick shares one set: one query per snapshot kind per target
 * per tick, whatever the number of policies.
 */
import type { Logger } from 'pino';
import type { TargetDb } from '../db/pool.js';
import { fetchLocks, type LockSnapshot } from '../db/locks.js';
import { connectionsUsed, fetchRoles, fetchSessions, hiddenSessionsWarning, type RoleColumns, type RoleSnapshot, type Snapshot } from '../db/snapshot.js';
import { coerceError } from '../errors.js';
import type { Metrics } from '../metrics/registry.js';
import type { Readiness } from './readiness.js';
import type { Warnings } from './warnings.js';

/** The snapshots one run may read, fetched only when first asked for and then shared. */
export interface Snapshots {
  sessions(): Promise<Snapshot>;
  roles(): Promise<RoleSnapshot>;
  /** Lock waits of the session snapshot's waiters (and prepared transactions). */
  locks(): Promise<LockSnapshot>;
}

function memo<T>(fetch: () => Promise<T>): () => Promise<T> {
  let promise: Promise<T> | undefined;
  return () => {
    if (!promise) {
      promise = fetch();
      // Callers handle the rejection; this copy only keeps it from being reported as unhandled.
      promise.catch(() => undefined);
    }
    return promise;
  };
}

export class SnapshotReader {
  readonly #metrics: Metrics;
  readonly #readiness: Readiness;
  readonly #warnings: Warnings;
  readonly #log: Logger;
  /** One set of snapshots per target per tick, shared by every policy due at that tick. */
  readonly #tick = new Map<string, { tick: number; snapshots: Snapshots }>();
  /** Targets whose failed role snapshot is being read again (one retry at a time). */
  readonly #retrying = new Set<string>();
  /**
   * Each target's last role columns, by target name: the server sends them again only when they
   * changed (ROLES_SQL's digest), so a tick neither transfers nor decodes 100,000 unchanged roles.
   */
  readonly #roleColumns = new Map<string, RoleColumns>();

  constructor(deps: { metrics: Metrics; readiness: Readiness; warnings: Warnings; log: Logger }) {
    this.#metrics = deps.metrics;
    this.#readiness = deps.readiness;
    this.#warnings = deps.warnings;
    this.#log = deps.log;
  }

  /** Takes a session snapshot and records it (pgwarden_up, session gauges, readiness, hidden sessions). */
  async sessions(db: TargetDb): Promise<Snapshot> {
    try {
      const snapshot = await fetchSessions(db);
      this.#metrics.recordSessions(db.name, snapshot.sessions, db.ownPids);
      this.#metrics.connections.set({ target: db.name }, connectionsUsed(snapshot.sessions));
      this.#metrics.connectionsUsable.set({ target: db.name }, snapshot.slots.usable);
      this.#readiness.record(db.name, 'sessions');
      // A failed role snapshot keeps the target down until roles are read again, which an hourly
      // role policy would do an hour later: read them again now, while it lasts.
      if (this.#readiness.failing(db.name, 'roles') && !this.#retrying.has(db.name)) {
        this.#retrying.add(db.name);
        void this.roles(db)
          .catch(() => undefined)
          .finally(() => this.#retrying.delete(db.name));
      }
      const hidden = hiddenSessionsWarning(snapshot);
      if (hidden) this.#warnings.give(`hidden/${db.name}`, db.name, hidden);
      else this.#warnings.clear(`hidden/${db.name}`);
      return snapshot;
    } catch (err) {
      this.#readiness.record(db.name, 'sessions', err);
      this.#log.error({ err: coerceError(err), target: db.name }, 'snapshot failed');
      throw err;
    }
  }

  /** Takes a role snapshot and records the expiry gauges. */
  async roles(db: TargetDb): Promise<RoleSnapshot> {
    try {
      const roles = await fetchRoles(db, this.#roleColumns.get(db.name));
      this.#roleColumns.set(db.name, roles.roles.columns);
      this.#metrics.recordRoles(db.name, roles.roles);
      this.#readiness.record(db.name, 'roles');
      return roles;
    } catch (err) {
      this.#readiness.record(db.name, 'roles', err);
      this.#log.error({ err: coerceError(err), target: db.name }, 'role snapshot failed');
      throw err;
    }
  }

  /** Fresh lazily-fetched snapshots of `db` (for `run --once`, `plan`). */
  fresh(db: TargetDb): Snapshots {
    const sessions = memo(() => this.sessions(db));
    const locks = memo(async () => {
      const { sessions: list, clockUs } = await sessions();
      try {
        const taken = await fetchLocks(db, list, clockUs);
        this.#metrics.recordLocks(db.name, list, taken);
        this.#readiness.record(db.name, 'locks');
        return taken;
      } catch (err) {
        this.#readiness.record(db.name, 'locks', err);
        throw err;
      }
    });
    return { sessions, roles: memo(() => this.roles(db)), locks };
  }

  /** The snapshots of `db` for scheduler tick `tick` (seconds): taken once, shared by every policy due. */
  forTick(db: TargetDb, tick: number): Snapshots {
    const cached = this.#tick.get(db.name);
    if (cached && cached.tick === tick) return cached.snapshots;
    const snapshots = this.fresh(db);
    this.#tick.set(db.name, { tick, snapshots });
    return snapshots;
  }
}
