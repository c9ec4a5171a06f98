/**
 * The engine: the generic pipeline, for one policy on one target — gather (snapshots) →
 * evaluate (the kind's module) → plan → execute → record — shared by the daemon's scheduled
 * ticks, `run --once` and `plan`. What it keeps between runs lives in small objects of its own
 * (src/engine/: readiness, history, warnings, snapshots); the two pipelines are
 * engine/session-run.ts and engine/role-run.ts. A run never throws: errors are logged and counted.
 */
import type { Logger } from 'pino';
import type { Config } from './config/load.js';
import type { Mode, Policy } from './config/policies.js';
import { coerceError } from './errors.js';
import type { TargetDb } from './db/pool.js';
import type { RoleSnapshot, Snapshot } from './db/snapshot.js';
import { errorReason } from './db/pg-errors.js';
import type { Metrics } from './metrics/registry.js';
import { directoriesAskedBy, isRolePolicy, needsLocks } from './policies/registry.js';
import type { Directories } from './directory/watcher.js';
import type { RunContext, RunReport } from './engine/context.js';
import { RunHistory } from './engine/history.js';
import { Readiness, type TargetState } from './engine/readiness.js';
import { runRolePolicy } from './engine/role-run.js';
import { runSessionPolicy } from './engine/session-run.js';
import { SnapshotReader, type Snapshots } from './engine/snapshots.js';
import { Warnings } from './engine/warnings.js';
import { AuditRepeats } from './engine/audit-repeats.js';

export type { RunReport } from './engine/context.js';
export type { Snapshots } from './engine/snapshots.js';
export type { TargetState } from './engine/readiness.js';

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

export class Engine {
  readonly targets: readonly TargetDb[];
  /** The configured directories: the daemon starts their searches, `run --once` and `plan` search first. */
  readonly directories: Directories;
  readonly #context: RunContext;
  readonly #clock: () => number;

  constructor(options: EngineOptions) {
    const log = options.logger.child({ component: 'engine' });
    this.#clock = options.clock ?? Date.now;
    this.targets = options.targets;
    const readiness = new Readiness(
      options.targets.map((t) => t.name),
      options.metrics,
      this.#clock,
    );
    const warnings = new Warnings(options.onWarning ?? ((target, message) => log.warn({ target }, message)));
    // Only the directories some policy asks: one nobody asks is not searched (nor alerted on).
    this.directories = directoriesAskedBy(options.config, {
      metrics: options.metrics,
      log: options.logger.child({ component: 'directory' }),
      clock: this.#clock,
    });
    this.#context = {
      config: options.config,
      metrics: options.metrics,
      log,
      audit: options.logger.child({ component: 'audit' }),
      history: new RunHistory(this.#clock),
      warnings,
      readiness,
      snapshots: new SnapshotReader({ metrics: options.metrics, readiness, warnings, log }),
      directories: this.directories,
      auditRepeats: new AuditRepeats(options.config.auditRepeatAfterMs, this.#clock),
      clock: this.#clock,
    };
  }

  /** Each target's readiness, for /readyz (a read-only view). */
  get states(): ReadonlyMap<string, TargetState> {
    return this.#context.readiness.view;
  }

  /** The mode a policy runs in: its own, else the global one. */
  modeOf(policy: Policy): Mode {
    return policy.mode ?? this.#context.config.mode;
  }

  /** Records whether this replica leads (enforces on) a target. */
  setLeader(target: string, leader: boolean): void {
    this.#context.readiness.setLeader(target, leader);
  }

  /** Targets a policy runs on. */
  targetsOf(policy: Policy): TargetDb[] {
    return this.targets.filter((t) => !policy.targets || policy.targets.includes(t.name));
  }

  /** Takes a session snapshot and records it (pgwarden_up, session gauges, readiness, hidden sessions). */
  snapshot(db: TargetDb): Promise<Snapshot> {
    return this.#context.snapshots.sessions(db);
  }

  /** Takes a role snapshot and records the expiry gauges. */
  roleSnapshot(db: TargetDb): Promise<RoleSnapshot> {
    return this.#context.snapshots.roles(db);
  }

  /** Fresh lazily-fetched snapshots of `db` (for `run --once`, `plan`). */
  freshSnapshots(db: TargetDb): Snapshots {
    return this.#context.snapshots.fresh(db);
  }

  /** The snapshots of `db` for scheduler tick `tick` (seconds): taken once, shared by every policy due. */
  snapshotsForTick(db: TargetDb, tick: number): Snapshots {
    return this.#context.snapshots.forTick(db, tick);
  }

  /** Runs one policy on one target against `snapshots`, in `mode`. Never throws. */
  async runPolicy(db: TargetDb, policy: Policy, snapshots: Snapshots, mode: Mode): Promise<RunReport> {
    const { metrics, log } = this.#context;
    const started = performance.now();
    const labels = { target: db.name, policy: policy.name };
    try {
      const report = isRolePolicy(policy)
        ? await runRolePolicy(this.#context, db, policy, snapshots, mode)
        : await runSessionPolicy(this.#context, db, policy, await sessionsFor(policy, snapshots), mode);
      metrics.violations.set({ ...labels, kind: policy.kind }, report.counts.violations);
      if (report.error !== undefined || report.counts.failed) metrics.errors.inc(labels);
      else metrics.lastSuccess.set(labels, this.#clock() / 1000);
      return report;
    } catch (err) {
      metrics.errors.inc(labels);
      log.error({ err: coerceError(err), ...labels }, 'policy run failed');
      return { violations: [], actions: [], counts: { violations: 0, failed: false }, error: errorReason(err) };
    } finally {
      metrics.runDuration.observe(labels, (performance.now() - started) / 1000);
    }
  }

  /**
   * Every policy once, now: one snapshot per target shared by all of them (`run --once`, `plan`).
   * Targets run in parallel, policies of a target one after the other.
   */
  async runAll(policies: readonly Policy[], modeFor: (policy: Policy) => Mode): Promise<RunReport & { errors: string[] }> {
    // The directories the policies ask are searched first (each within its timeout); a failed
    // search leaves that directory deciding nothing, and is an error of the run.
    const directoryErrors = await this.directories.refresh();
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
    const violations = reports.flatMap((r) => r.out.flatMap((o) => o.violations));
    const actions = reports.flatMap((r) => r.out.flatMap((o) => o.actions));
    return {
      violations,
      actions,
      counts: { violations: violations.length, failed: actions.some((a) => a.result === 'failed') },
      errors: [
        ...directoryErrors,
        ...reports.flatMap((r) => (r.failed ? [r.failed] : [])),
        ...reports.flatMap((r) => r.out.flatMap((o) => (o.error && !r.failed ? [o.error] : []))),
      ],
    };
  }
}

/** The session snapshot, with the lock waits attached for the policies that need them. */
async function sessionsFor(policy: Policy, snapshots: Snapshots): Promise<Snapshot> {
  const sessions = await snapshots.sessions();
  return needsLocks(policy) ? { ...sessions, locks: await snapshots.locks() } : sessions;
}
