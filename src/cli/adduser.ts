/**
 * `pgwarden adduser ROLE`: a LOGIN role created as a careful DBA would — a password sent only as a
 * SCRAM-SHA-256 verifier, an expiry (no expiry only when asked for), its memberships, CONNECT and
 * schema grants — in one transaction for the cluster-wide statements and one per database.
 * `--update` adds only what an existing role is missing; `--dry-run` prints every statement.
 */
import { auditAddUserStep } from '../actions/audit.js';
import {
  ADDUSER_POLICY,
  addUserStepJson,
  executeAddUser,
  planAddUser,
  schemaKey,
  type AddUserPlan,
  type AddUserStep,
  type SchemaGrantRequest,
  type SchemaPrivilege,
} from '../actions/adduser.js';
import { fetchPasswordSettings, storedAsScram } from '../db/password.js';
import type { TargetDb } from '../db/pool.js';
import { fetchAddUserAuthority, fetchExistingUser, fetchSchemaState, unreachableDatabases, type ExistingUser } from '../db/user-state.js';
import { UsageError } from '../errors.js';
import { expiryRequiredBy } from '../policies/registry.js';
import { loadContext, requireActionableRole, requireDatabase, requireIdentifierLength, requireRole, singleTarget, withTargets, type GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { recordActions } from './metrics-file.js';
import { printJson, printTable } from './output.js';
import { parseValidUntil, readNewPassword, validUntilAfter } from './password.js';

/** Names CREATE ROLE refuses (PostgreSQL's role-name checks). */
const RESERVED_ROLE_NAMES = new Set(['public', 'none', 'current_user', 'current_role', 'session_user']);

export interface AddUserOptions {
  validUntil?: string;
  validFor?: string;
  /** false when `--no-expiry` was given. */
  expiry: boolean;
  inRole: string[];
  connect: string[];
  schema: string[];
  connLimit?: string;
  update?: boolean;
  dryRun?: boolean;
  target?: string;
  metricsFile?: string;
}

/** Reads one identifier of a `--schema` value: `"quoted"` (with `""` for a quote) or up to `stop`. */
function readName(text: string, at: number, stop: string | null): { name: string; next: number } {
  if (text[at] === '"') {
    let name = '';
    let i = at + 1;
    for (;;) {
      if (i >= text.length) throw new Error('an unterminated quoted name');
      if (text[i] === '"') {
        if (text[i + 1] === '"') {
          name += '"';
          i += 2;
          continue;
        }
        return { name, next: i + 1 };
      }
      name += text[i];
      i++;
    }
  }
  const end = stop === null ? text.length : text.indexOf(stop, at);
  const next = end === -1 ? text.length : end;
  return { name: text.slice(at, next), next };
}

/**
 * `DB.SCHEMA[:usage|create]`. Names are exact (case kept); a name holding a dot or ending in
 * `:usage` is written in double quotes, as in SQL: `"my.db"."Sales"`. `create` includes USAGE.
 */
export function parseSchemaSpec(text: string): SchemaGrantRequest {
  const fail = (why: string) => new UsageError(`--schema: ${JSON.stringify(text)} ${why} (expected DB.SCHEMA, DB.SCHEMA:usage or DB.SCHEMA:create)`);
  let body = text;
  let privileges: SchemaPrivilege[] = ['USAGE'];
  const suffix = /:(usage|create)$/i.exec(text);
  if (suffix) {
    body = text.slice(0, suffix.index);
    if ((suffix[1] as string).toLowerCase() === 'create') privileges = ['USAGE', 'CREATE'];
  }
  try {
    const database = readName(body, 0, '.');
    if (body[database.next] !== '.') throw fail('has no schema');
    const schema = readName(body, database.next + 1, null);
    if (schema.next !== body.length) throw fail('has text after the schema name');
    if (database.name === '' || schema.name === '') throw fail('names an empty database or schema');
    return { database: database.name, schema: schema.name, privileges };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw fail(`is not valid: ${(err as Error).message}`);
  }
}

function parseConnLimit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^(-1|\d+)$/.test(text) || Number(text) > 2 ** 31 - 1) throw new UsageError(`--conn-limit: ${JSON.stringify(text)} is not a connection count (a whole number, or -1 for no limit)`);
  return Number(text);
}

/** The expiry asked for: ISO or `infinity`, null for `--no-expiry`, undefined when none was given. */
function requestedExpiry(options: AddUserOptions, now: Date): string | null | undefined {
  const given = [options.validUntil !== undefined, options.validFor !== undefined, !options.expiry].filter(Boolean).length;
  if (given > 1) throw new UsageError('--valid-until, --valid-for and --no-expiry exclude each other: give one');
  if (options.validUntil !== undefined) return parseValidUntil(options.validUntil);
  if (options.validFor !== undefined) return validUntilAfter(options.validFor, now);
  return options.expiry ? undefined : null;
}

/**
 * Refuses (exit 2, nothing done) what pgwarden's role could not do: a GRANT without the grant
 * option does not fail, it grants nothing with a warning, so this is checked first.
 */
async function requireAuthority(db: TargetDb, plan: AddUserPlan, schemaGrantable: ReadonlyMap<string, ReadonlySet<string>>): Promise<void> {
  const groups = plan.steps.flatMap((s) => (s.group !== undefined ? [s.group] : []));
  const databases = plan.steps.filter((s) => s.action === 'grant_connect').map((s) => s.database as string);
  const authority = await fetchAddUserAuthority(db, plan.request.role, groups, databases);
  const alters = plan.steps.some((s) => s.action === 'set_valid_until' || s.action === 'set_conn_limit');
  if ((plan.created || alters || groups.length > 0) && !authority.canCreateRoles) {
    throw new UsageError("pgwarden's role can neither create nor change roles: it needs CREATEROLE (or superuser)");
  }
  if (alters && !authority.canAlterRole) {
    throw new UsageError(`pgwarden's role may not alter ${JSON.stringify(plan.request.role)} (PostgreSQL 16+: it needs ADMIN OPTION on it)`);
  }
  const group = authority.ungrantableGroups[0];
  if (group !== undefined) throw new UsageError(`--in-role ${JSON.stringify(group)}: pgwarden's role may not grant it (PostgreSQL 16+: it needs ADMIN OPTION on it)`);
  const database = authority.ungrantableDatabases[0];
  if (database !== undefined) throw new UsageError(`--connect ${JSON.stringify(database)}: pgwarden's role may not grant CONNECT on it (it needs to own it, or CONNECT WITH GRANT OPTION)`);
  for (const s of plan.steps) {
    if (s.schema === undefined || s.database === undefined) continue;
    const held = schemaGrantable.get(schemaKey(s.database, s.schema)) ?? new Set<string>();
    const missing = (s.privileges ?? []).filter((p) => !held.has(p));
    if (missing.length > 0) {
      throw new UsageError(`--schema ${s.database}.${s.schema}: pgwarden's role may not grant ${missing.join(', ')} on it (it needs to own the schema, or the privilege WITH GRANT OPTION)`);
    }
  }
}

async function printSteps(io: Io, steps: readonly AddUserStep[]): Promise<void> {
  await printTable(
    io.stdout,
    [
      { header: 'RESULT', value: (s: AddUserStep) => s.result },
      { header: 'ACTION', value: (s) => s.action },
      { header: 'DATABASE', value: (s) => s.database },
      { header: 'SQL', value: (s) => s.sql, max: 120 },
    ],
    steps,
    'nothing to do',
  );
  for (const s of steps) if (s.detail) io.stdout.write(`note: ${s.action}${s.database ? ` on ${s.database}` : ''}: ${s.detail}\n`);
}

export async function runAddUser(role: string, options: AddUserOptions, globals: GlobalOptions, io: Io): Promise<void> {
  const expiry = requestedExpiry(options, new Date());
  const connLimit = parseConnLimit(options.connLimit);
  const schemas = options.schema.map(parseSchemaSpec);
  requireIdentifierLength('role', role);
  if (role.startsWith('pg_')) throw new UsageError(`role ${JSON.stringify(role)}: names starting with pg_ are reserved by PostgreSQL`);
  if (RESERVED_ROLE_NAMES.has(role)) throw new UsageError(`role ${JSON.stringify(role)}: the name is reserved by PostgreSQL`);
  if (options.inRole.includes(role)) throw new UsageError(`--in-role ${JSON.stringify(role)}: a role cannot be a member of itself`);
  const context = loadContext(globals, io);
  const audit = context.logger.child({ component: 'audit' });

  const outcome = await withTargets(context, options.target, async (dbs) => {
    const db = singleTarget(dbs);
    if (expiry === null || expiry === 'infinity') {
      const policy = expiryRequiredBy(context.config.policies, role, db.name);
      if (policy) throw new UsageError(`${expiry === null ? '--no-expiry' : '--valid-until infinity'}: policy ${JSON.stringify(policy)} requires an expiry for ${JSON.stringify(role)} (requireExpiry: true); give --valid-for or --valid-until`);
    }
    const found = await fetchExistingUser(db, role);
    if (found && !options.update) throw new UsageError(`role ${JSON.stringify(role)} already exists on target ${db.name} (--update adds only what it is missing)`);
    // An existing role is changed by --update: the roles no command acts on are refused here too.
    if (found) await requireActionableRole(db, role);
    if (!found && expiry === undefined) throw new UsageError('an expiry is required: --valid-for 90d, --valid-until 2027-03-01, or --no-expiry to say there is none');
    // Only a usage error is the caller's: a lost connection stays a runtime failure (exit 1).
    const asUsage = (flag: string) => (err: unknown): never => {
      throw err instanceof UsageError ? new UsageError(`${flag}: ${err.message}`) : err;
    };
    for (const group of options.inRole) await requireRole(db, group).catch(asUsage('--in-role'));
    for (const database of [...options.connect, ...schemas.map((s) => s.database)]) {
      await requireDatabase(db, database).catch(asUsage(options.connect.includes(database) ? '--connect' : '--schema'));
    }
    // Schemas must exist before anything is done; --update also needs what is granted on them.
    const schemaPrivileges = new Map<string, Set<string>>();
    const schemaGrantable = new Map<string, Set<string>>();
    const byDatabase = new Map<string, string[]>();
    for (const s of schemas) byDatabase.set(s.database, [...(byDatabase.get(s.database) ?? []), s.schema]);
    for (const [database, names] of byDatabase) {
      const state = await fetchSchemaState(db, database, names, role);
      if (state.missing.length > 0) throw new UsageError(`--schema: schema ${JSON.stringify(state.missing[0])} does not exist in database ${JSON.stringify(database)}`);
      for (const [schema, privileges] of state.privileges) schemaPrivileges.set(schemaKey(database, schema), privileges);
      for (const [schema, privileges] of state.grantable) schemaGrantable.set(schemaKey(database, schema), privileges);
    }
    const existing: ExistingUser | null = found ? { ...found, schemaPrivileges } : null;
    const plan = planAddUser(db.name, { role, validUntil: expiry ?? null, connLimit, inRoles: options.inRole, connect: options.connect, schemas }, existing);
    await requireAuthority(db, plan, schemaGrantable);
    const granted = new Set([...options.connect, ...(found?.connect ?? [])]);
    const unreachable = await unreachableDatabases(db, schemas.map((s) => s.database), role, [...options.inRole, ...(found?.memberOf ?? [])], granted);
    const notes = unreachable.map((d) => `${role} will not be able to connect to ${d} (no CONNECT through the role, its groups or PUBLIC): add --connect ${d}`);

    if (options.dryRun || plan.steps.length === 0) {
      for (const s of plan.steps) auditAddUserStep(audit, s, true);
      return { plan, notes, dryRun: true, previousValidUntil: found?.validUntil ?? null };
    }
    // Asked before anything is done: a refused password leaves the server untouched.
    const password = plan.created ? await readNewPassword(io) : null;
    try {
      await executeAddUser(db, plan, password, context.config.lockTimeoutMs);
    } finally {
      // Whatever happened, what was done is on record.
      for (const s of plan.steps) auditAddUserStep(audit, s, false);
      await recordActions(options.metricsFile, context.config, plan.steps.map((step) => ({ ...step, policy: ADDUSER_POLICY })));
    }
    if (plan.created && plan.steps[0]?.result === 'done') {
      const scram = await db.withClient(async (client) => storedAsScram(client, role, await fetchPasswordSettings(client)));
      if (scram === false) throw new Error(`the password of ${JSON.stringify(role)} was not stored as a SCRAM-SHA-256 verifier`);
    }
    return { plan, notes, dryRun: false, previousValidUntil: found?.validUntil ?? null };
  });

  const { plan, notes } = outcome;
  const created = plan.created && plan.steps[0]?.result === 'done';
  // The expiry the role has now (or will have, in a dry run): an --update leaves a set one alone.
  const expirySet = plan.steps.some((s) => (s.action === 'create_role' || s.action === 'set_valid_until') && (s.result === 'done' || s.result === 'planned'));
  const validUntil = expirySet ? plan.request.validUntil : outcome.previousValidUntil;
  if (context.json) {
    await printJson(io.stdout, {
      role,
      created,
      validUntil,
      actions: plan.steps.map(addUserStepJson),
      unchanged: plan.unchanged,
      notes,
    });
  } else {
    if (created) io.stdout.write(`created role ${role}: LOGIN, password stored as a SCRAM-SHA-256 verifier, valid until ${validUntil ?? 'no expiry'}\n`);
    await printSteps(io, plan.steps);
    for (const u of plan.unchanged) io.stdout.write(`unchanged: ${u}\n`);
    for (const n of notes) io.stdout.write(`note: ${n}\n`);
  }
  if (plan.steps.some((s) => s.result === 'failed' || s.result === 'gone')) io.raiseExitCode(1);
}
