/**
 * Offboarding a role: NOLOGIN, end its sessions, then in every database REASSIGN OWNED BY role TO
 * new and DROP OWNED BY role (its databases and other shared objects are reassigned with the
 * first), then DROP ROLE. The DDL takes ACCESS EXCLUSIVE locks: each statement runs with a
 * lock_timeout and is retried, so offboarding cannot itself start a lock pile-up. A database that
 * fails stops the run before DROP ROLE and is reported, so a re-run finishes the job; the role
 * stays NOLOGIN meanwhile. Before anything is dropped, the grants the role holds or handed on are
 * written to the audit log as the SQL that restores them.
 */
import type { Logger } from 'pino';
import type pg from 'pg';
import { fetchLocalGrants, fetchSharedGrants } from '../db/grants.js';
import { auditGrants } from './audit.js';
import { errorCode, errorReason, SQLSTATE } from '../db/pg-errors.js';
import type { TargetDb } from '../db/pool.js';
import { quoteIdent } from '../db/quote.js';
import type { Session } from '../db/snapshot.js';
import { failureIn, nologinPlan, planTerminations, runDdlOn, runDdlPlans, sessionsOf, terminatePlan, type RoleActionPlan } from './role-actions.js';
import { fetchSessions } from '../db/snapshot.js';
import { endSessionsAfterLock } from './lockout.js';
import { NO_EXEMPTIONS } from './planner.js';

export type DatabaseStatus = 'done' | 'failed' | 'pending';

export interface OffboardPlan {
  readonly role: string;
  readonly newOwner: string;
  readonly actions: RoleActionPlan[];
  /** Every database of the server that is not a template and allows connections. */
  readonly databases: Record<string, DatabaseStatus>;
  /** Databases the current user may not enter: the offboard cannot finish while they exist. */
  readonly unreachable: string[];
}

const POLICY = 'offboard';

/** Plans the whole offboard (pure, given the facts): the order is the contract. */
export function planOffboard(input: {
  target: string;
  role: string;
  newOwner: string;
  login: boolean;
  sessions: readonly Session[];
  ownPids: ReadonlySet<number>;
  databases: readonly { name: string; canConnect: boolean }[];
  drop: boolean;
}): OffboardPlan {
  const { target, role, newOwner } = input;
  const actions: RoleActionPlan[] = [];
  if (input.login) actions.push(nologinPlan(target, POLICY, role));
  actions.push(...sessionsOf(role, input.sessions, input.ownPids).map((s) => terminatePlan(target, POLICY, s)));
  const databases: Record<string, DatabaseStatus> = {};
  const unreachable: string[] = [];
  for (const { name, canConnect } of input.databases) {
    databases[name] = 'pending';
    if (!canConnect) unreachable.push(name);
    actions.push(
      { target, policy: POLICY, action: 'reassign_owned', role, database: name, sql: `reassign owned by ${quoteIdent(role)} to ${quoteIdent(newOwner)}`, result: 'planned' },
      { target, policy: POLICY, action: 'drop_owned', role, database: name, sql: `drop owned by ${quoteIdent(role)}`, result: 'planned' },
    );
  }
  if (input.drop) actions.push({ target, policy: POLICY, action: 'drop_role', role, sql: `drop role ${quoteIdent(role)}`, result: 'planned' });
  return { role, newOwner, actions, databases, unreachable };
}

export interface OffboardDeps {
  readonly db: TargetDb;
  readonly lockTimeoutMs: number;
  readonly audit: Logger;
  /** Attempts per statement when a lock is not granted in time. */
  readonly attempts?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs a DDL statement with lock_timeout, retrying lock timeouts with backoff. */
async function runWithRetry(client: pg.ClientBase, sql: string, deps: OffboardDeps): Promise<void> {
  const attempts = deps.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    try {
      await runDdlOn(client, sql, deps.lockTimeoutMs);
      return;
    } catch (err) {
      if (errorCode(err) !== SQLSTATE.lockNotAvailable || attempt >= attempts) throw err;
      await (deps.sleep ?? defaultSleep)(500 * 2 ** (attempt - 1));
    }
  }
}

/** Executes a planned offboard; sets each action's result and each database's status. Never throws. */
export async function executeOffboard(plan: OffboardPlan, deps: OffboardDeps): Promise<void> {
  const { db, audit } = deps;
  const target = db.name;
  const by = (kind: string) => plan.actions.filter((a) => a.action === kind && a.result === 'planned');
  const fail = (actions: readonly RoleActionPlan[], detail: string) => {
    for (const a of actions) if (a.result === 'planned') Object.assign(a, { result: 'skipped', detail });
  };

  await runDdlPlans(db, by('nologin'), deps.lockTimeoutMs);
  if (plan.actions.some((a) => a.action === 'nologin' && a.result === 'failed')) {
    fail(plan.actions, 'NOLOGIN failed: nothing else was done, so the role cannot log back in half-offboarded');
    return;
  }
  // The sessions are read again now that NOLOGIN has committed: one that logged in after the
  // plan was made is ended too, and every end is verified.
  try {
    const ended = await endSessionsAfterLock(db, {
      read: () => fetchSessions(db),
      plan: (snapshot) =>
        planTerminations({ target, policy: POLICY, roles: new Set([plan.role]), exempt: NO_EXEMPTIONS, ownPids: db.ownPids, self: snapshot.self }, snapshot.sessions),
      lockedOut: (s) => s.role === plan.role,
    });
    const others = plan.actions.filter((a) => a.action !== 'terminate');
    const locks = others.filter((a) => a.action === 'nologin');
    plan.actions.splice(0, plan.actions.length, ...locks, ...ended, ...others.slice(locks.length));
    // A session that could not be ended would outlive DROP ROLE with no role at all, beyond the
    // reach of every policy and command: stop here, the role locked out, nothing else changed.
    const unended = ended.filter((a) => a.result === 'failed');
    if (unended.length > 0) {
      fail(plan.actions, `${unended.length} session(s) of the role could not be ended (${unended[0]?.detail ?? ''}): nothing more was done; the role stays NOLOGIN`);
      return;
    }
  } catch (err) {
    fail(plan.actions, `could not read the role's sessions after NOLOGIN: ${errorReason(err)}`);
    return;
  }

  try {
    const version = await db.query<{ v: number }>("select current_setting('server_version_num')::int as v");
    auditGrants(audit, { target, policy: POLICY, kind: POLICY, role: plan.role }, await fetchSharedGrants(db, plan.role, version.rows[0]?.v ?? 0));
  } catch (err) {
    fail(plan.actions, `could not record the role's grants before dropping them: ${errorReason(err)}`);
    return;
  }

  for (const database of Object.keys(plan.databases)) {
    const steps = plan.actions.filter((a) => a.database === database && (a.action === 'reassign_owned' || a.action === 'drop_owned'));
    if (plan.unreachable.includes(database)) {
      for (const s of steps) Object.assign(s, { result: 'failed', detail: 'no CONNECT privilege on this database' });
      plan.databases[database] = 'failed';
      continue;
    }
    let client: pg.Client | undefined;
    try {
      client = await db.connectTo(database);
      auditGrants(audit, { target, policy: POLICY, kind: POLICY, role: plan.role }, await fetchLocalGrants(client, database, plan.role));
      for (const step of steps) {
        try {
          await runWithRetry(client, step.sql, deps);
          step.result = 'done';
        } catch (err) {
          const outcome = await failureIn(db, database, err);
          Object.assign(step, outcome);
          // The database went away: the rest of its steps are moot, not failed.
          if (outcome.result === 'gone') {
            for (const s of steps) if (s.result === 'planned') Object.assign(s, outcome);
          } else {
            fail(steps, 'an earlier step in this database failed');
          }
          break;
        }
      }
    } catch (err) {
      // A database dropped meanwhile holds nothing of the role any more: `gone`, and done.
      const outcome = await failureIn(db, database, err);
      for (const s of steps) if (s.result === 'planned') Object.assign(s, outcome);
    } finally {
      await client?.end().catch(() => undefined);
    }
    plan.databases[database] = steps.every((s) => s.result === 'done' || s.result === 'gone') ? 'done' : 'failed';
  }

  const drop = by('drop_role');
  if (Object.values(plan.databases).some((s) => s !== 'done')) {
    fail(drop, 'not every database is done: re-run offboard to finish; the role stays NOLOGIN meanwhile');
    return;
  }
  for (const step of drop) {
    try {
      await db.withClient((client) => runWithRetry(client, step.sql, deps));
      step.result = 'done';
    } catch (err) {
      step.result = 'failed';
      step.detail = errorReason(err);
    }
  }
}
