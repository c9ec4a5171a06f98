/**
 * `adduser`: creating a login role with everything it needs, safely. Planning is pure (request +
 * what exists → statements); execution runs the statements on the server in one transaction for
 * the cluster-wide ones (the role, its memberships, CONNECT grants) and one per database for the
 * schema grants. The password never appears in a statement as text: only a SCRAM-SHA-256 verifier
 * is sent, and the printed form of that statement shows `'***'` in its place.
 */
import type pg from 'pg';
import type { TargetDb } from '../db/pool.js';
import { fetchPasswordSettings, silenceStatementLog } from '../db/password.js';
import { scramVerifier } from '../db/scram.js';
import { withTransaction } from '../db/transaction.js';
import type { ExistingUser } from '../db/user-state.js';
import { failureIn, failureOf } from './role-actions.js';
import { grantConnectSql } from '../db/lock-database.js';
import { createRoleSql, grantRoleSql, grantSchemaSql, setConnectionLimitSql, setPasswordSql, setValidUntilSql } from '../db/role-ddl.js';
import type { ActionJson, ActionResult } from './types.js';

/** The policy name of adduser's audit lines and `pgwarden_actions_total` series. */
export const ADDUSER_POLICY = 'adduser';

export type SchemaPrivilege = 'USAGE' | 'CREATE';

/** `--schema DB.SCHEMA[:usage|create]`: create includes usage (CREATE alone cannot look names up). */
export interface SchemaGrantRequest {
  readonly database: string;
  readonly schema: string;
  readonly privileges: readonly SchemaPrivilege[];
}

export interface AddUserRequest {
  readonly role: string;
  /** ISO-8601 UTC or `infinity`; null: no expiry (`--no-expiry`), or leave it as it is (`--update`). */
  readonly validUntil: string | null;
  readonly connLimit?: number;
  readonly inRoles: readonly string[];
  readonly connect: readonly string[];
  readonly schemas: readonly SchemaGrantRequest[];
}

export type AddUserAction = 'create_role' | 'set_password' | 'set_valid_until' | 'set_conn_limit' | 'grant_role' | 'grant_connect' | 'grant_schema';

/** One statement of the plan. */
export interface AddUserStep {
  readonly target: string;
  readonly action: AddUserAction;
  readonly role: string;
  /** The database the statement is about (CONNECT) or runs in (schema grants). */
  readonly database?: string;
  /** True when it must run inside `database`; false: in pgwarden's connection database. */
  readonly inDatabase: boolean;
  /** What is granted: the group (grant_role), or the schema and its privileges (grant_schema). */
  readonly group?: string;
  readonly schema?: string;
  readonly privileges?: readonly SchemaPrivilege[];
  /** As printed and audited: the password verifier replaced by `'***'`. */
  readonly sql: string;
  result: ActionResult;
  detail?: string;
}

export interface AddUserPlan {
  readonly request: AddUserRequest;
  readonly created: boolean;
  readonly steps: AddUserStep[];
  /** What `--update` found already there or left alone on purpose, in words. */
  readonly unchanged: string[];
}

function sameInstant(a: string, b: string): boolean {
  return a === b || Date.parse(a) === Date.parse(b);
}

/**
 * The statements that make `request` true. With `existing` (`--update`) only what is missing:
 * LOGIN is never switched back on (a NOLOGIN role was probably disabled on purpose), and an
 * expiry or connection limit that is set already is left as it is.
 */
export function planAddUser(target: string, request: AddUserRequest, existing: ExistingUser | null): AddUserPlan {
  const { role } = request;
  const steps: AddUserStep[] = [];
  const unchanged: string[] = [];
  const step = (action: AddUserAction, sql: string, database?: string, inDatabase = false, what: Partial<AddUserStep> = {}) =>
    steps.push({ target, action, role, ...(database !== undefined ? { database } : {}), inDatabase, sql, result: 'planned', ...what });

  if (existing === null) step('create_role', createRoleSql(role, request.validUntil, request.connLimit));
  else {
    if (!existing.login) unchanged.push(`${role} is NOLOGIN: left as it is (adduser never re-enables a role; ALTER ROLE … LOGIN is a deliberate act)`);
    if (request.validUntil !== null) {
      // No expiry (NULL or infinity) is what an expiry fills in; -infinity locks password logins and stays.
      const none = existing.validUntil === null || existing.validUntil === 'infinity';
      if (none && request.validUntil !== existing.validUntil) {
        step('set_valid_until', setValidUntilSql(role, request.validUntil));
      } else if (existing.validUntil === null) unchanged.push('no expiry: already');
      else if (!sameInstant(existing.validUntil, request.validUntil)) {
        unchanged.push(`valid until ${existing.validUntil}: left as it is (change it with pgwarden passwd --valid-until)`);
      } else unchanged.push(`valid until ${existing.validUntil}: already set`);
    }
    if (request.connLimit !== undefined) {
      if (existing.connLimit === -1) step('set_conn_limit', setConnectionLimitSql(role, request.connLimit));
      else unchanged.push(`connection limit ${existing.connLimit}: ${existing.connLimit === request.connLimit ? 'already set' : 'left as it is'}`);
    }
  }
  for (const group of request.inRoles) {
    if (existing?.memberOf.has(group)) unchanged.push(`member of ${group}: already`);
    else step('grant_role', grantRoleSql(group, role), undefined, false, { group });
  }
  for (const database of request.connect) {
    if (existing?.connect.has(database)) unchanged.push(`CONNECT on database ${database}: already granted`);
    else step('grant_connect', grantConnectSql(database, role), database);
  }
  // Last in its transaction: a statement that fails is written to the server log with its text,
  // and nothing after the verifier can fail and drag it there.
  if (existing === null) step('set_password', setPasswordSql(role, null));
  for (const grant of request.schemas) {
    const held = existing?.schemaPrivileges.get(schemaKey(grant.database, grant.schema)) ?? new Set<string>();
    const missing = grant.privileges.filter((p) => !held.has(p));
    const present = grant.privileges.filter((p) => held.has(p));
    if (present.length > 0) unchanged.push(`${present.join(', ')} on schema ${grant.schema} in ${grant.database}: already granted`);
    if (missing.length > 0) step('grant_schema', grantSchemaSql(grant.schema, missing, role), grant.database, true, { schema: grant.schema, privileges: missing });
  }
  return { request, created: existing === null, steps, unchanged };
}

/** The key of a schema in `ExistingUser.schemaPrivileges`. */
export function schemaKey(database: string, schema: string): string {
  return `${database}\u0000${schema}`;
}

/** Marks the other statements of a transaction that was rolled back. */
function rolledBack(steps: readonly AddUserStep[], failed: AddUserStep): void {
  for (const s of steps) {
    if (s !== failed && s.result !== 'failed') Object.assign(s, { result: 'skipped', detail: `rolled back: ${failed.action} failed in the same transaction` });
  }
}

/**
 * Runs `steps` in one transaction on `client`; on the first failure, rolls all of them back. A
 * GRANT that granted nothing (warning 01007: pgwarden's role lacks the grant option) is a failure
 * of its step too: it would otherwise read as done.
 */
async function runInTransaction(
  client: pg.ClientBase,
  steps: readonly AddUserStep[],
  lockTimeoutMs: number,
  statementOf: (step: AddUserStep) => string,
  before: () => Promise<void>,
): Promise<boolean> {
  let current: AddUserStep | undefined;
  try {
    await withTransaction(client, { lockTimeoutMs }, async (c, assertChanged) => {
      await before();
      for (const step of steps) {
        current = step;
        await c.query(statementOf(step));
        assertChanged();
      }
      current = undefined;
    });
  } catch (err) {
    const failed = current ?? steps[0];
    if (failed) {
      Object.assign(failed, failureOf(err));
      rolledBack(steps, failed);
    }
    return false;
  }
  for (const s of steps) s.result = 'done';
  return true;
}

/**
 * Does the plan: the cluster-wide statements first, in one transaction (the role must exist before
 * anything is granted to it in a database), then one transaction per database. `password` is
 * needed only when the role is created. Sets every step's result; never throws for a statement.
 */
export async function executeAddUser(db: TargetDb, plan: AddUserPlan, password: string | null, lockTimeoutMs: number): Promise<void> {
  const shared = plan.steps.filter((s) => !s.inDatabase);
  const byDatabase = new Map<string, AddUserStep[]>();
  for (const s of plan.steps.filter((x) => x.inDatabase)) byDatabase.set(s.database as string, [...(byDatabase.get(s.database as string) ?? []), s]);

  if (shared.length > 0) {
    const ok = await db.withClient(async (client) => {
      const settings = await fetchPasswordSettings(client);
      return runInTransaction(
        client,
        shared,
        lockTimeoutMs,
        (step) => {
          if (step.action !== 'set_password') return step.sql;
          if (password === null) throw new Error('adduser: a password is needed to create the role');
          return setPasswordSql(step.role, scramVerifier(password, settings.iterations));
        },
        // The verifier is a secret: keep the transaction that carries it out of the server log.
        () => (plan.created ? silenceStatementLog(client, settings) : Promise.resolve()),
      );
    });
    if (!ok && plan.created) {
      for (const steps of byDatabase.values()) {
        for (const s of steps) Object.assign(s, { result: 'skipped', detail: 'not run: the role was not created' });
      }
      return;
    }
  }
  for (const [database, steps] of byDatabase) {
    let client: pg.Client;
    try {
      client = await db.connectTo(database);
    } catch (err) {
      const outcome = await failureIn(db, database, err);
      for (const s of steps) Object.assign(s, outcome);
      continue;
    }
    try {
      await runInTransaction(client, steps, lockTimeoutMs, (s) => s.sql, () => Promise.resolve());
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

export function addUserStepJson(s: AddUserStep): ActionJson {
  return {
    target: s.target,
    policy: ADDUSER_POLICY,
    action: s.action,
    role: s.role,
    ...(s.database !== undefined ? { database: s.database } : {}),
    sql: s.sql,
    result: s.result,
    ...(s.detail !== undefined ? { detail: s.detail } : {}),
  };
}
