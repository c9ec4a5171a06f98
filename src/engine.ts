/**
 * The engine: for one target and one policy, snapshot → rule → planner → executor, with every
 * step counted in metrics and every action written to the audit log. Shared by the daemon's
 * scheduled ticks, `run --once` and `plan`. A run never throws: errors are logged and counted.
 */
import type { Logger } from 'pino';
import type { Config } from './config/load.js';
import type { Mode, Policy } from './config/policies.js';
import { executeSessionActions } from './actions/executor.js';
import { breakerVerdict, countClientSessions, planSessionActions } from './actions/planner.js';
import {
  sessionActionJson,
  sessionViolationJson,
  type ActionJson,
  type SessionActionPlan,
  type ViolationJson,
} from './actions/types.js';
import { coerceError } from './errors.js';
import type { TargetDb } from './db/pool.js';
import { fetchRoles, fetchSessions, hiddenSessionsWarning, type RoleSnapshot, type Snapshot } from './db/snapshot.js';
import { fetchAlterRefusals, fetchConnectableDatabases } from './db/roles.js';
import { auditRestorePoints, auditRoleAction, auditSessionAction } from './actions/audit.js';
import { fetchRoleGrants } from './db/grants.js';
import {
  executeRoleActions,
  limitPlans,
  planRoleActions,
  planTerminations,
  refuseUnalterable,
  roleActionJson,
  roleViolationJson,
  rolesToEnd,
  type RoleActionPlan,
} from './actions/role-actions.js';
import { endSessionsAfterLock } from './actions/lockout.js';
import type { RoleViolation } from './policies/types.js';
import { errorReason } from './db/pg-errors.js';
import type { Metrics } from './metrics/registry.js';
import {
  evaluateRolePolicy,
  evaluateSessionPolicy,
  isRolePolicy,
  keptMembership,
  needsLocks,
  recordRolePolicy,
  remembersCancels,
} from './policies/registry.js';
import { fetchLocks, type LockSnapshot } from './db/locks.js';
import { backendKey } from './policies/types.js';

/** What one policy run on one target found and did. */
export interface RunReport {
  readonly violations: ViolationJson[];
  readonly actions: ActionJson[];
  /** Set when the run could not complete (snapshot or statement failure). */
  readonly error?: string;
}

/** The snapshot kinds whose failure makes a target down (DESIGN.md: pgwarden_up, /readyz). */
type SnapshotKind = 'sessions' | 'roles' | 'locks';

/**
 * The snapshots one run may read, fetched only when first asked for and then shared: one query
 * per snapshot kind per target per tick, whatever the number of policies due.
 */
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

/** The state /readyz reports for each target. */
export interface TargetState {
  up: boolean;
  leader: boolean;
  lastSuccess: string | null;
  lastError: string | null;
}

export interface EngineOptions {
  readonly config: Config;
  readonly targets: readonly TargetDb[];
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Milliseconds since epoch; injected so tests control time. */
  readonly clock?: () => number;
  /**
   * Where warnings about what pgwarden cannot see or do go (hidden sessions, roles it never acts
   * on), each once until its cause goes away: default a warn line in the log; commands print them.
   */
  readonly onWarning?: (target: string, message: string) => void;
}

const FORGET_CANCELLED_AFTER_MS = 24 * 3600 * 1000;

/** Login roles of a snapshot (the role circuit breaker's denominator), counted without a copy. */
function countLoginRoles(roles: RoleSnapshot['roles']): number {
  let count = 0;
  for (const r of roles) if (r.login) count += 1;
  return count;
}

export class Engine {
  readonly #config: Config;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #audit: Logger;
  readonly #clock: () => number;
  readonly targets: readonly TargetDb[];
  readonly states = new Map<string, TargetState>();
  /** Backends each policy that remembers its cancels cancelled, per target: for escalating to terminate. */
  readonly #cancelled = new Map<string, Map<string, number>>();
  /** One set of snapshots per target per tick, shared by every policy due at that tick. */
  readonly #tickSnapshots = new Map<string, { tick: number; snapshots: Snapshots }>();
  /** role/database pairs whose revoke_connect was reported ineffective, per target and policy. */
  readonly #ineffective = new Map<string, Set<string>>();
  /** Per target, the snapshot kinds whose last attempt failed, with the reason. */
  readonly #failing = new Map<string, Map<SnapshotKind, string>>();
  /** Warnings given and not yet cleared, by key: each is given once until its cause goes away. */
  readonly #warned = new Set<string>();
  /** Targets whose failed role snapshot is being read again (one retry at a time). */
  readonly #retrying = new Set<string>();
  readonly #onWarning: (target: string, message: string) => void;

  constructor(options: EngineOptions) {
    this.#config = options.config;
    this.#metrics = options.metrics;
    this.#log = options.logger.child({ component: 'engine' });
    this.#audit = options.logger.child({ component: 'audit' });
    this.#clock = options.clock ?? Date.now;
    this.#onWarning = options.onWarning ?? ((target, message) => this.#log.warn({ target }, message));
    this.targets = options.targets;
    for (const db of this.targets) this.states.set(db.name, { up: false, leader: false, lastSuccess: null, lastError: null });
  }

  /** The mode a policy runs in: its own, else the global one. */
  modeOf(policy: Policy): Mode {
    return policy.mode ?? this.#config.mode;
  }

  /** Records whether this replica leads (enforces on) a target. */
  setLeader(target: string, leader: boolean): void {
    const state = this.states.get(target);
    if (state) state.leader = leader;
    this.#metrics.leader.set({ target }, leader ? 1 : 0);
  }

  /**
   * In enforce mode a replica that does not lead the target plans and reports but does not act:
   * its planned actions are `skipped` with the reason (DESIGN.md).
   */
  #mayAct(db: TargetDb, mode: Mode, actions: readonly { result: string; detail?: string }[]): boolean {
    if (mode !== 'enforce') return false;
    if (this.states.get(db.name)?.leader) return true;
    for (const a of actions) {
      if (a.result === 'planned') Object.assign(a, { result: 'skipped', detail: 'another replica leads' });
    }
    return false;
  }

  /** Targets a policy runs on. */
  targetsOf(policy: Policy): TargetDb[] {
    return this.targets.filter((t) => !policy.targets || policy.targets.includes(t.name));
  }

  /**
   * Records how a snapshot of `kind` went on `db`: a target is up while none of its snapshot
   * kinds failed last time (a role snapshot that fails counts as much as a session snapshot).
   */
  #recordOutcome(db: TargetDb, kind: SnapshotKind, err?: unknown): void {
    const state = this.states.get(db.name) as TargetState;
    const failing = this.#failing.get(db.name) ?? new Map<SnapshotKind, string>();
    this.#failing.set(db.name, failing);
    if (err === undefined) failing.delete(kind);
    else failing.set(kind, `${kind} snapshot: ${errorReason(err)}`);
    state.up = failing.size === 0;
    if (state.up) {
      state.lastSuccess = new Date(this.#clock()).toISOString();
      state.lastError = null;
    } else state.lastError = [...failing.values()].join('; ');
    this.#metrics.up.set({ target: db.name }, state.up ? 1 : 0);
  }

  /** Gives a warning once, until `clearWarning` says its cause went away. */
  #warn(key: string, target: string, message: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#onWarning(target, message);
  }

  #clearWarning(key: string): void {
    this.#warned.delete(key);
  }

  /** Takes a session snapshot and records it (pgwarden_up, session gauges, readiness, hidden sessions). */
  async snapshot(db: TargetDb): Promise<Snapshot> {
    try {
      const snapshot = await fetchSessions(db);
      this.#metrics.recordSessions(db.name, snapshot.sessions, db.ownPids);
      this.#recordOutcome(db, 'sessions');
      // A failed role snapshot keeps the target down until roles are read again, which an hourly
      // role policy would do an hour later: read them again now, while it lasts.
      if (this.#failing.get(db.name)?.has('roles') && !this.#retrying.has(db.name)) {
        this.#retrying.add(db.name);
        void this.roleSnapshot(db)
          .catch(() => undefined)
          .finally(() => this.#retrying.delete(db.name));
      }
      const hidden = hiddenSessionsWarning(snapshot);
      if (hidden) this.#warn(`hidden/${db.name}`, db.name, hidden);
      else this.#clearWarning(`hidden/${db.name}`);
      return snapshot;
    } catch (err) {
      this.#recordOutcome(db, 'sessions', err);
      this.#log.error({ err: coerceError(err), target: db.name }, 'snapshot failed');
      throw err;
    }
  }

  /** Takes a role snapshot and records the expiry gauges. */
  async roleSnapshot(db: TargetDb): Promise<RoleSnapshot> {
    try {
      const roles = await fetchRoles(db);
      this.#metrics.recordRoles(db.name, roles.roles);
      this.#recordOutcome(db, 'roles');
      return roles;
    } catch (err) {
      this.#recordOutcome(db, 'roles', err);
      this.#log.error({ err: coerceError(err), target: db.name }, 'role snapshot failed');
      throw err;
    }
  }

  /** Fresh lazily-fetched snapshots of `db` (for `run --once`, `plan`). */
  freshSnapshots(db: TargetDb): Snapshots {
    const sessions = memo(() => this.snapshot(db));
    const locks = memo(async () => {
      const { sessions: list, clockUs } = await sessions();
      try {
        const taken = await fetchLocks(db, list, clockUs);
        this.#metrics.recordLocks(db.name, list, taken);
        this.#recordOutcome(db, 'locks');
        return taken;
      } catch (err) {
        this.#recordOutcome(db, 'locks', err);
        throw err;
      }
    });
    return { sessions, roles: memo(() => this.roleSnapshot(db)), locks };
  }

  /** The snapshots of `db` for scheduler tick `tick` (seconds): taken once, shared by every policy due. */
  snapshotsForTick(db: TargetDb, tick: number): Snapshots {
    const cached = this.#tickSnapshots.get(db.name);
    if (cached && cached.tick === tick) return cached.snapshots;
    const snapshots = this.freshSnapshots(db);
    this.#tickSnapshots.set(db.name, { tick, snapshots });
    return snapshots;
  }

  /**
   * Runs one policy on one target against `snapshot` (or a failed snapshot), in `mode`.
   * Never throws.
   */
  async runPolicy(db: TargetDb, policy: Policy, snapshots: Snapshots, mode: Mode): Promise<RunReport> {
    const started = performance.now();
    const labels = { target: db.name, policy: policy.name };
    try {
      const report = isRolePolicy(policy)
        ? await this.#runRolePolicy(db, policy, snapshots, mode)
        : await this.#runSessionPolicy(db, policy, await this.#sessionsFor(policy, snapshots), mode);
      this.#metrics.violations.set({ ...labels, kind: policy.kind }, report.violations.length);
      if (report.actions.some((a) => a.result === 'failed')) this.#metrics.errors.inc(labels);
      else this.#metrics.lastSuccess.set(labels, this.#clock() / 1000);
      return report;
    } catch (err) {
      this.#metrics.errors.inc(labels);
      this.#log.error({ err: coerceError(err), ...labels }, 'policy run failed');
      return { violations: [], actions: [], error: errorReason(err) };
    } finally {
      this.#metrics.runDuration.observe(labels, (performance.now() - started) / 1000);
    }
  }

  /** The session snapshot, with the lock waits attached for the policies that need them. */
  async #sessionsFor(policy: Policy, snapshots: Snapshots): Promise<Snapshot> {
    const sessions = await snapshots.sessions();
    return needsLocks(policy) ? { ...sessions, locks: await snapshots.locks() } : sessions;
  }

  async #runSessionPolicy(db: TargetDb, policy: Policy, snapshot: Snapshot, mode: Mode): Promise<RunReport> {
    const plan = this.#planSessions(db, snapshot, policy);
    if (this.#mayAct(db, mode, plan.actions)) await executeSessionActions(db, plan.actions);
    this.#remember(db.name, policy, plan.actions);
    for (const action of plan.actions) this.#record(db.name, policy, action, mode);
    if (plan.breaker) this.#log.error({ target: db.name, policy: policy.name }, plan.breaker);
    // A pile-up nothing can end (a prepared transaction at its root) is said once while it lasts.
    const key = `prepared/${db.name}/${policy.name}`;
    const stuck = plan.violations.filter((v) => v.condition === 'prepared');
    if (stuck.length > 0) this.#warn(key, db.name, `policy ${policy.name}: ${stuck.map((v) => v.reason).join('; ')}`);
    else this.#clearWarning(key);
    return { violations: plan.violations.map(sessionViolationJson), actions: plan.actions.map(sessionActionJson) };
  }

  async #runRolePolicy(db: TargetDb, policy: Policy, snapshots: Snapshots, mode: Mode): Promise<RunReport> {
    const roles = await snapshots.roles();
    const violations = evaluateRolePolicy(roles, policy);
    const wants = (kind: string) => violations.some((v) => v.actions.some((a) => a === kind));
    // The session snapshot and the per-role facts are read only when an action needs them.
    const sessions = wants('terminate') ? (await snapshots.sessions()).sessions : [];
    const connectable = wants('revoke_connect')
      ? await fetchConnectableDatabases(db, violations.filter((v) => v.actions.includes('revoke_connect')).map((v) => v.role.role))
      : new Map<string, string[]>();
    const revoking = violations.filter((v) => v.actions.includes('revoke_privileges')).map((v) => v.role.role);
    const grants = revoking.length > 0 ? await fetchRoleGrants(db, revoking) : undefined;
    for (const s of grants?.skipped ?? []) {
      this.#log.error({ target: db.name, policy: policy.name, database: s.database }, `revoke_privileges: database not searched (${s.reason}); its grants stay`);
    }
    const key = `${db.name}/${policy.name}`;
    const ineffective = this.#ineffective.get(key) ?? new Set<string>();
    const { exempt, safety } = this.#config.settings;
    const plan = planRoleActions({
      violations,
      sessions,
      connectable,
      maxActionsPerRun: policy.maxActionsPerRun,
      exempt,
      safety,
      ownPids: db.ownPids,
      self: roles.self,
      loginRoles: countLoginRoles(roles.roles),
      knownIneffective: ineffective,
      ...(grants ? { grants: grants.grants } : {}),
      ...(keptMembership(policy) !== undefined ? { keepMembershipIn: keptMembership(policy) } : {}),
    });
    // What pgwarden's role may not alter is failed from the plan on (and the rest of that role held back).
    // (A superuser may alter any role: no question to ask, no round trip.)
    const locking = roles.self.superuser ? [] : plan.actions.filter((a) => a.action === 'nologin' && a.result === 'planned').map((a) => a.role);
    if (locking.length > 0) refuseUnalterable(plan.actions, await fetchAlterRefusals(db, locking));
    for (const { role, reason } of plan.reserved) {
      this.#warn(`reserved/${key}/${role}`, db.name, `policy ${policy.name}: role ${JSON.stringify(role)} is ${reason}: pgwarden never acts on it (skipped)`);
    }
    let actions = plan.actions;
    if (this.#mayAct(db, mode, plan.actions)) {
      auditRestorePoints(this.#audit, policy.kind, plan.actions);
      const ending = plan.breaker ? new Set<string>() : rolesToEnd(plan.violations);
      actions = await executeRoleActions(db, plan.actions, {
        lockTimeoutMs: this.#config.lockTimeoutMs,
        endSessions: { roles: ending, end: (endingNow) => this.#endRoleSessions(db, policy, endingNow, plan.violations, plan.actions) },
      });
    }
    for (const a of actions) {
      if (a.action === 'revoke_connect' && a.effective === false) ineffective.add(`${a.role}/${a.database ?? ''}`);
    }
    this.#ineffective.set(key, ineffective);
    for (const action of actions) this.#recordRole(db.name, policy, action, mode);
    if (plan.breaker) this.#log.error({ target: db.name, policy: policy.name }, plan.breaker);
    recordRolePolicy(this.#metrics, db.name, policy, plan.violations);
    return { violations: plan.violations.map(roleViolationJson), actions: actions.map(roleActionJson) };
  }

  /**
   * Ends the sessions of `roles` once their NOLOGIN (or REVOKE CONNECT) committed, from a fresh
   * read, under what is left of the cap and under the circuit breaker, and verifies they are gone.
   */
  #endRoleSessions(db: TargetDb, policy: Policy, roles: ReadonlySet<string>, violations: readonly RoleViolation[], done: readonly RoleActionPlan[]): Promise<RoleActionPlan[]> {
    const { exempt, safety } = this.#config.settings;
    // Roles nobody can log in as any more: whatever session of theirs shows up is ended too.
    const lockedOut = new Set(violations.filter((v) => !v.role.login).map((v) => v.role.role));
    for (const a of done) if (a.action === 'nologin' && a.result === 'done') lockedOut.add(a.role);
    const room = policy.maxActionsPerRun - done.filter((a) => a.action !== 'terminate' && a.result !== 'skipped').length;
    return endSessionsAfterLock(db, {
      read: () => this.snapshot(db),
      plan: (snapshot) => {
        const kills = planTerminations({ target: db.name, policy: policy.name, roles, exempt, ownPids: db.ownPids, self: snapshot.self }, snapshot.sessions);
        const breaker = limitPlans(kills, room, policy.maxActionsPerRun, () =>
          breakerVerdict(kills.filter((k) => k.result === 'planned').length, countClientSessions(snapshot.sessions, db.ownPids), 'client sessions', safety),
        );
        if (breaker) this.#log.error({ target: db.name, policy: policy.name }, breaker);
        return kills;
      },
      lockedOut: (s) => lockedOut.has(s.role ?? ''),
    });
  }

  /**
   * Every policy once, now: one snapshot per target shared by all of them (`run --once`, `plan`).
   * Targets run in parallel, policies of a target one after the other.
   */
  async runAll(policies: readonly Policy[], modeFor: (policy: Policy) => Mode): Promise<RunReport & { errors: string[] }> {
    const reports = await Promise.all(
      this.targets.map(async (db) => {
        const due = policies.filter((p) => this.targetsOf(p).includes(db));
        const snapshots = this.freshSnapshots(db);
        const out: RunReport[] = [];
        for (const policy of due) out.push(await this.runPolicy(db, policy, snapshots, modeFor(policy)));
        // Readiness of the target: the session snapshot answers for it (taken by now if any policy needed it).
        const failed = await snapshots.sessions().then(
          () => undefined,
          (err: unknown) => `${db.name}: ${errorReason(err)}`,
        );
        return { out, failed };
      }),
    );
    return {
      violations: reports.flatMap((r) => r.out.flatMap((o) => o.violations)),
      actions: reports.flatMap((r) => r.out.flatMap((o) => o.actions)),
      errors: [
        ...reports.flatMap((r) => (r.failed ? [r.failed] : [])),
        ...reports.flatMap((r) => r.out.flatMap((o) => (o.error && !r.failed ? [o.error] : []))),
      ],
    };
  }

  #planSessions(db: TargetDb, snapshot: Snapshot, policy: Policy) {
    const key = `${db.name}/${policy.name}`;
    const history = { cancelled: this.#cancelled.get(key) ?? new Map<string, number>(), now: this.#clock() };
    const violations = evaluateSessionPolicy(snapshot, policy, history);
    const { exempt, safety } = this.#config.settings;
    return planSessionActions({
      violations,
      maxActionsPerRun: policy.maxActionsPerRun,
      clientSessions: countClientSessions(snapshot.sessions, db.ownPids),
      exempt,
      safety,
      ownPids: db.ownPids,
      self: snapshot.self,
    });
  }

  /** Keeps which backends were cancelled (for escalateAfter); forgets backends no longer violating. */
  #remember(target: string, policy: Policy, actions: readonly SessionActionPlan[]): void {
    if (!remembersCancels(policy)) return;
    const key = `${target}/${policy.name}`;
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

  /** One audit line and one counter increment per role action; the restore SQL rides along. */
  #recordRole(target: string, policy: Policy, action: RoleActionPlan, mode: Mode): void {
    this.#metrics.countAction(target, policy.name, action.action, action.result);
    auditRoleAction(this.#audit, policy.kind, action, mode === 'dry-run');
  }

  /** One audit line and one counter increment per action. */
  #record(target: string, policy: Policy, action: SessionActionPlan, mode: Mode): void {
    this.#metrics.countAction(target, policy.name, action.action, action.result);
    const { includeQuery, queryMaxLength } = this.#config.settings.audit;
    auditSessionAction(
      this.#audit,
      { target, policy: policy.name, kind: policy.kind, dryRun: mode === 'dry-run', query: { include: includeQuery, maxLength: queryMaxLength } },
      action,
    );
  }
}
