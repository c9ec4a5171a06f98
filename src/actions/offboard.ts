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
import { fetchLocalGrants, fetchSharedGrants, revokeSql } from '../db/grants.js';
import { fetchFootprint, type DatabaseFootprint } from '../db/footprint.js';
import { unenterable, VISIT_CONCURRENCY, type OwnedObject, type UnvisitedDatabase } from '../db/owned.js';
import type { GrantTo } from '../db/privileges.js';
import type { ReassignRights } from '../db/roles.js';
import { auditGrants } from './audit.js';
import { errorCode, errorReason, serverMessage, SQLSTATE } from '../db/pg-errors.js';
import { visitDatabases } from '../db/databases.js';
import type { TargetDb } from '../db/pool.js';
import { allowConnectionsFix, alterOwnerFix, alterRoleFix, grantConnectFix, grantRoleFix } from '../db/fixes.js';
import { dropOwnedSql, dropRoleSql, reassignOwnedSql, trialOffboardSql } from '../db/role-ddl.js';
import type { Session } from '../db/snapshot.js';
import { failureIn, failureOf, nologinPlan, planTerminations, runDdlOn, runDdlPlans, sessionsOf, terminatePlan, type RoleActionPlan } from './role-actions.js';
import { fetchSessions } from '../db/snapshot.js';
import { endSessionsAfterLock } from './lockout.js';
import { NO_EXEMPTIONS } from './planner.js';

export type DatabaseStatus = 'done' | 'failed' | 'pending';

/** DESIGN.md `blocker`: what stops an offboard before its first change, with the statement that removes it. */
export interface Blocker {
  readonly kind: 'unenterable_database' | 'missing_privileges' | 'superuser_owned_kind' | 'foreign_grant' | 'membership';
  readonly database?: string;
  readonly object?: string;
  readonly detail: string;
  /** The statement that removes the blocker (as a superuser or the object's owner), or null where none does. */
  readonly fix: string | null;
}

/** Everything the blockers are decided from, read before any change. */
export interface OffboardFacts {
  readonly role: string;
  readonly newOwner: string;
  /** pgwarden's current role (the one that needs the rights). */
  readonly me: string;
  readonly bootstrapRole: string;
  readonly login: boolean;
  readonly drop: boolean;
  readonly footprint: readonly DatabaseFootprint[];
  /** Databases holding something of the role that could not be entered (owned objects or grants). */
  readonly unvisited: readonly UnvisitedDatabase[];
  readonly owned: readonly OwnedObject[];
  readonly grants: readonly GrantTo[];
  readonly rights: ReassignRights;
  /** Why pgwarden's role may not ALTER (NOLOGIN) or DROP the role, or null. */
  readonly alterRefusal: string | null;
}

/** Kinds of object only a superuser may own (the server refuses another owner: event triggers, foreign-data wrappers). */
const SUPERUSER_ONLY: Readonly<Record<string, string>> = { 'event trigger': 'EVENT TRIGGER', 'foreign-data wrapper': 'FOREIGN DATA WRAPPER' };

const entriesOf = (f: DatabaseFootprint) => f.owned + f.acl + f.policies + f.other;

/**
 * Every blocker of DESIGN.md's list, found before the first change (pure): databases that hold
 * something of the role but cannot be entered, rights pgwarden's role lacks (the role's
 * privileges for REASSIGN/DROP OWNED, the new owner's for REASSIGN, ALTER/DROP ROLE), objects of
 * kinds only a superuser may own when the new owner is not one, and privileges granted by roles
 * pgwarden may not revoke as. Each with the statement that removes it.
 */
export function findBlockers(f: OffboardFacts): Blocker[] {
  const blockers: Blocker[] = [];
  const v16 = f.rights.serverVersionNum >= 160000;
  const unvisited = new Map(f.unvisited.map((u) => [u.database, u.reason]));
  for (const d of f.footprint) {
    if (d.database === null || entriesOf(d) === 0) continue;
    const reason = unvisited.get(d.database) ?? unenterable(d);
    if (!reason) continue;
    const fix = !d.allowConnections
      ? allowConnectionsFix(d.database)
      : !d.canConnect
        ? grantConnectFix(d.database, f.me)
        : null;
    blockers.push({
      kind: 'unenterable_database',
      database: d.database,
      detail:
        `holds ${entriesOf(d)} entr${entriesOf(d) === 1 ? 'y' : 'ies'} of ${JSON.stringify(f.role)} (${d.owned} owned, ${d.acl} privileges, ${d.policies} policies) ` +
        `that REASSIGN OWNED and DROP OWNED must be run in, but ${reason}`,
      fix,
    });
  }
  if (f.alterRefusal && (f.login || f.drop)) {
    const fix = /CREATEROLE/.test(f.alterRefusal)
      ? alterRoleFix(f.me, ['CREATEROLE'])
      : /ADMIN OPTION/.test(f.alterRefusal)
        ? grantRoleFix(f.role, f.me, 'ADMIN OPTION')
        : null;
    blockers.push({ kind: 'missing_privileges', detail: `${[f.login ? 'NOLOGIN' : '', f.drop ? 'DROP ROLE' : ''].filter(Boolean).join(' and ')} of ${JSON.stringify(f.role)}: ${f.alterRefusal}`, fix });
  }
  const anything = f.footprint.some((d) => entriesOf(d) > 0);
  if (!f.rights.superuser && anything && !f.rights.rolePrivileges) {
    blockers.push({
      kind: 'missing_privileges',
      detail: `REASSIGN OWNED and DROP OWNED need the privileges of ${JSON.stringify(f.role)}, which pgwarden's role does not have (membership with inheritance)`,
      fix: grantRoleFix(f.role, f.me, v16 ? 'INHERIT TRUE' : undefined),
    });
  }
  const owns = f.footprint.some((d) => d.owned > 0);
  if (!f.rights.superuser && owns && !f.rights.newOwnerOk) {
    blockers.push({
      kind: 'missing_privileges',
      detail: `REASSIGN OWNED … TO ${JSON.stringify(f.newOwner)} needs ${v16 ? 'the right to SET ROLE to' : 'the privileges of'} the new owner, which pgwarden's role does not have`,
      fix: grantRoleFix(f.newOwner, f.me, v16 ? 'SET TRUE' : undefined),
    });
  }
  const databasesOwned = f.owned.filter((o) => o.type === 'database');
  if (!f.rights.superuser && !f.rights.createdb && databasesOwned.length > 0) {
    blockers.push({
      kind: 'missing_privileges',
      detail: `${JSON.stringify(f.role)} owns ${databasesOwned.length} database(s) (${databasesOwned.map((o) => o.name).join(', ')}): a database changes owner only by a role with CREATEDB`,
      fix: alterRoleFix(f.me, ['CREATEDB']),
    });
  }
  if (!f.rights.newOwnerSuperuser) {
    for (const o of f.owned) {
      const keyword = SUPERUSER_ONLY[o.type];
      if (!keyword) continue;
      blockers.push({
        kind: 'superuser_owned_kind',
        ...(o.database !== null ? { database: o.database } : {}),
        object: o.name,
        detail: `the ${o.type} ${o.name} can only be owned by a superuser, and ${JSON.stringify(f.newOwner)} is not one: REASSIGN OWNED would fail (or --reassign-to a superuser)`,
        fix: alterOwnerFix(keyword, o.name, f.bootstrapRole),
      });
    }
  }
  if (!f.rights.superuser) {
    for (const g of f.grants) {
      if (g.grant.membership || g.grantor === f.me || f.rights.grantors.get(g.grantor) === true) continue;
      blockers.push({
        kind: 'foreign_grant',
        ...(g.database !== null ? { database: g.database } : {}),
        object: g.object,
        detail: `${g.privileges.join(', ')} on ${g.object} was granted by ${JSON.stringify(g.grantor)}, whose privileges pgwarden's role does not have: DROP OWNED cannot revoke it, and DROP ROLE would fail (run the fix as a superuser or as the grantor)`,
        fix: revokeSql(g.grant),
      });
    }
  }
  return blockers;
}

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

/** REASSIGN OWNED then DROP OWNED in one database. */
function databaseSteps(target: string, role: string, newOwner: string, database: string): RoleActionPlan[] {
  return [
    { target, policy: POLICY, action: 'reassign_owned', role, database, sql: reassignOwnedSql(role, newOwner), result: 'planned' },
    { target, policy: POLICY, action: 'drop_owned', role, database, sql: dropOwnedSql(role), result: 'planned' },
  ];
}

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
    actions.push(...databaseSteps(target, role, newOwner, name));
  }
  if (input.drop) actions.push({ target, policy: POLICY, action: 'drop_role', role, sql: dropRoleSql(role), result: 'planned' });
  return { role, newOwner, actions, databases, unreachable };
}

/**
 * The databases REASSIGN OWNED and DROP OWNED must run in: those where pg_shdepend records
 * something of the role, and — for what it has in the shared catalogs (a database it owns, a
 * tablespace) when no such database is among them — the connection database, where REASSIGN
 * OWNED moves shared objects too.
 */
export function offboardDatabases(footprint: readonly DatabaseFootprint[], connectionDatabase: string): string[] {
  const local = footprint.filter((f) => f.database !== null && entriesOf(f) > 0).map((f) => f.database as string);
  const shared = footprint.some((f) => f.database === null && entriesOf(f) > 0);
  return shared && local.length === 0 ? [connectionDatabase] : local;
}

/**
 * The last check before the first change: in each database, the offboard's own statements run
 * in a transaction that is rolled back (`begin; reassign owned …; drop owned …; rollback`), so
 * the server itself says what it would refuse — the ownership rules of every object kind, which
 * differ by kind and by major, and a DROP OWNED that could not revoke everything. Nothing is
 * changed. A database where a lock was not granted in time is `unchecked`, not a blocker: the
 * real run waits and retries there the same way.
 */
export async function trialOffboard(
  db: TargetDb,
  databases: readonly string[],
  role: string,
  newOwner: string,
  lockTimeoutMs: number,
): Promise<{ blockers: Blocker[]; unchecked: string[] }> {
  const blockers: Blocker[] = [];
  const unchecked: string[] = [];
  const sql = trialOffboardSql(role, newOwner);
  const visit = await visitDatabases(
    db,
    databases,
    async (client) => {
      try {
        await runDdlOn(client, sql, lockTimeoutMs);
        return null;
      } catch (err) {
        return err;
      }
    },
    VISIT_CONCURRENCY,
  );
  for (const { database, value: err } of visit.results) {
    if (err === null) continue;
    if (errorCode(err) === SQLSTATE.lockNotAvailable) {
      unchecked.push(database);
      continue;
    }
    const message = serverMessage(err);
    const kind: Blocker['kind'] = /must be a superuser/i.test(message) ? 'superuser_owned_kind' : errorCode(err) === '01006' ? 'foreign_grant' : 'missing_privileges';
    blockers.push({ kind, database, detail: `REASSIGN OWNED and DROP OWNED, tried and rolled back, were refused: ${message}`, fix: null });
  }
  for (const s of visit.skipped) blockers.push({ kind: 'unenterable_database', database: s.database, detail: `could not be entered: ${s.reason}`, fix: null });
  return { blockers, unchecked };
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

  // What the role holds may have grown between the plan and the lockout (a session of it created
  // something, someone granted it something): read pg_shdepend again, and go there too.
  try {
    for (const database of offboardDatabases(await fetchFootprint(db, plan.role), db.where.database)) {
      if (database in plan.databases) continue;
      plan.databases[database] = 'pending';
      const at = plan.actions.findIndex((a) => a.action === 'drop_role');
      plan.actions.splice(at < 0 ? plan.actions.length : at, 0, ...databaseSteps(target, plan.role, plan.newOwner, database));
    }
  } catch (err) {
    fail(plan.actions, `could not read what the role holds after NOLOGIN: ${errorReason(err)}`);
    return;
  }

  try {
    auditGrants(audit, { target, policy: POLICY, kind: POLICY, role: plan.role }, await fetchSharedGrants(db, plan.role));
  } catch (err) {
    fail(plan.actions, `could not record the role's grants before dropping them: ${errorReason(err)}`);
    return;
  }

  // Only a failure that a re-run can get past (a lock not granted in time) is worth a re-run.
  let retriable = true;
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
          if (outcome.result === 'failed' && errorCode(err) !== SQLSTATE.lockNotAvailable) retriable = false;
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
      if (outcome.result === 'failed') retriable = false;
      for (const s of steps) if (s.result === 'planned') Object.assign(s, outcome);
    } finally {
      await client?.end().catch(() => undefined);
    }
    plan.databases[database] = steps.every((s) => s.result === 'done' || s.result === 'gone') ? 'done' : 'failed';
  }

  const drop = by('drop_role');
  if (Object.values(plan.databases).some((s) => s !== 'done')) {
    fail(
      drop,
      retriable
        ? 'not every database is done (a lock was not granted in time): re-run offboard to finish; the role stays NOLOGIN meanwhile'
        : 'not every database is done: a re-run alone will not finish it — remove the cause given above first; the role stays NOLOGIN meanwhile',
    );
    return;
  }
  for (const step of drop) {
    try {
      await db.withClient((client) => runWithRetry(client, step.sql, deps));
      step.result = 'done';
    } catch (err) {
      Object.assign(step, failureOf(err));
    }
  }
}
