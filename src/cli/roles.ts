/** `pgwarden roles`: login, superuser, expiry, days left, sessions, memberships, disabled. */
import { parseDuration } from '../config/duration.js';
import type { Policy } from '../config/policies.js';
import { fetchRoles, fetchSessions, type RoleRows } from '../db/snapshot.js';
import { UsageError } from '../errors.js';
import { reservedRole, type SelfRoles } from '../actions/planner.js';
import { directoryVerdicts, roleConditions } from '../policies/registry.js';
import type { RoleSources } from '../policies/kind.js';
import type { DirectoryVerdict } from '../directory/answer.js';
import { loadContext, searchDirectories, warnHidden, withTargets, type GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { jsonTime, printJsonArray, printTable } from './output.js';

/** DESIGN.md `roles` shape (plus `target` when several servers are watched). */
export interface RoleJson {
  target: string;
  role: string;
  login: boolean;
  superuser: boolean;
  /**
   * ISO-8601 UTC, made once per row (jsonTime) rather than by JSON.stringify per Date; null for
   * no expiry or `infinity`; `-infinity` (password logins refused for good) as that string (DESIGN.md).
   */
  validUntil: string | null;
  daysLeft: number | null;
  sessions: number;
  memberOf: readonly string[];
  /** The condition under which a configured policy flags the role as disabled (DESIGN.md), or null. */
  disabled: string | null;
  /**
   * Only when directories are configured: what the directory a policy asks says about the role —
   * `active`, `disabled`, `missing`, `not_in_group`, or `unknown` (its search failed); null when
   * no directory judges it.
   */
  directory?: DirectoryVerdict | null;
}

export interface RolesOptions {
  expiring?: string;
  all?: boolean;
  target?: string;
}

/** Whole days until expiry, rounded down (so negative as soon as it is past). */
export function daysLeft(validSeconds: number | null): number | null {
  return validSeconds === null || !Number.isFinite(validSeconds) ? null : Math.floor(validSeconds / 86_400);
}

/**
 * The rows of the command: without --all the reserved pg_* roles are left out; with
 * --expiring, only roles whose finite expiry is within that window or already past. One pass
 * and one sort in place, where 100,000 roles went through three copies (issue 19); the snapshot's
 * roles are read as they are iterated, not copied into an array first: each RoleInfo then dies
 * young instead of 100,000 of them outliving the young generation.
 */
export function selectRoles(
  roles: RoleRows,
  options: { all: boolean; expiringSeconds: number | undefined },
  policies: readonly Policy[],
  target: string,
  self: SelfRoles,
  sources: RoleSources,
): RoleJson[] {
  const conditionOf = roleConditions(policies, roles, sources);
  const verdictOf = directoryVerdicts(policies, sources);
  const withDirectories = sources.directories.length > 0;
  const { all, expiringSeconds } = options;
  const rows: RoleJson[] = [];
  for (const r of roles) {
    if (!all && r.role.startsWith('pg_')) continue;
    if (expiringSeconds !== undefined && (r.validSeconds === null || r.validSeconds > expiringSeconds)) continue;
    // A role no policy acts on (pgwarden's own, the bootstrap superuser) is never shown disabled.
    const reserved = reservedRole(r.role, self) !== null;
    const row: RoleJson = {
      target,
      role: r.role,
      login: r.login,
      superuser: r.superuser,
      // validSeconds is null exactly when validUntil is (no expiry, or infinity): no Date to make.
      validUntil: r.validSeconds === null ? null : r.validSeconds === -Infinity ? '-infinity' : jsonTime(r.validUntil),
      daysLeft: daysLeft(r.validSeconds),
      sessions: r.sessions,
      memberOf: r.memberOf,
      disabled: reserved ? null : conditionOf(r),
    };
    if (withDirectories) row.directory = reserved ? null : verdictOf(r);
    rows.push(row);
  }
  // The snapshot comes in catalog order; shown by name (byte order, as PostgreSQL sorts `name`).
  return rows.sort((a, b) => (a.role < b.role ? -1 : a.role > b.role ? 1 : 0));
}

/** A number or null as JSON (null for NaN and ±Infinity, as JSON.stringify writes them). */
function jsonNumberOrNull(value: number | null): string {
  return value === null || !Number.isFinite(value) ? 'null' : String(value);
}

/** A string or null as JSON. */
function jsonStringOrNull(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(value);
}

/** The text between the role's name and its validUntil, by [login][superuser]. */
const FLAGS_JSON = [
  [',"login":false,"superuser":false,"validUntil":', ',"login":false,"superuser":true,"validUntil":'],
  [',"login":true,"superuser":false,"validUntil":', ',"login":true,"superuser":true,"validUntil":'],
] as const;

/**
 * One row as JSON.stringify writes it (same keys, same order, same text), for about half its
 * cost: JSON.stringify walking each of 100,000 rows was the largest part of `roles --json` after
 * loading (issue 19). JSON.stringify still writes the names and lists, so escaping is its own;
 * `validUntil` is quoted as it is, being ours (jsonTime's ISO-8601 or `-infinity`: nothing to escape).
 */
export function roleJsonLine(row: RoleJson): string {
  return (
    '{"target":' +
    JSON.stringify(row.target) +
    ',"role":' +
    JSON.stringify(row.role) +
    FLAGS_JSON[row.login ? 1 : 0][row.superuser ? 1 : 0] +
    (row.validUntil === null ? 'null' : `"${row.validUntil}"`) +
    ',"daysLeft":' +
    jsonNumberOrNull(row.daysLeft) +
    ',"sessions":' +
    jsonNumberOrNull(row.sessions) +
    ',"memberOf":' +
    (row.memberOf.length === 0 ? '[]' : JSON.stringify(row.memberOf)) +
    ',"disabled":' +
    jsonStringOrNull(row.disabled) +
    (row.directory === undefined ? '}' : `,"directory":${jsonStringOrNull(row.directory)}}`)
  );
}

export async function runRoles(options: RolesOptions, globals: GlobalOptions, io: Io): Promise<void> {
  let expiringSeconds: number | undefined;
  if (options.expiring !== undefined) {
    expiringSeconds = parseDuration(options.expiring);
    if (expiringSeconds === undefined) throw new UsageError(`--expiring: ${JSON.stringify(options.expiring)} is not a duration (e.g. 14d)`);
  }
  const context = loadContext(globals, io);
  const sources = await searchDirectories(context);
  const rows = await withTargets(context, options.target, async (dbs) => {
    const perTarget: RoleJson[][] = [];
    for (const db of dbs) {
      const snapshot = await fetchRoles(db);
      // The session counts include backends hidden from pgwarden's role; say that they are hidden.
      warnHidden(io, await fetchSessions(db));
      perTarget.push(selectRoles(snapshot.roles, { all: Boolean(options.all), expiringSeconds }, context.config.policies, db.name, snapshot.self, sources));
    }
    // Not push(...rows): every row an argument overflows the stack from about 125,000 roles.
    return perTarget.flat();
  });
  if (context.json) {
    await printJsonArray(io.stdout, rows, roleJsonLine);
    return;
  }
  const several = context.config.targets.length > 1;
  await printTable(
    io.stdout,
    [
      ...(several ? [{ header: 'TARGET', value: (r: RoleJson) => r.target }] : []),
      { header: 'ROLE', value: (r) => r.role, max: 32 },
      { header: 'LOGIN', value: (r) => (r.login ? 'yes' : 'no') },
      { header: 'SUPERUSER', value: (r) => (r.superuser ? 'yes' : '') },
      { header: 'VALID UNTIL', value: (r) => (r.validUntil ? r.validUntil.replace(/\.\d{3}Z$/, 'Z') : '') },
      { header: 'DAYS LEFT', value: (r) => r.daysLeft, right: true },
      { header: 'SESSIONS', value: (r) => r.sessions, right: true },
      { header: 'MEMBER OF', value: (r) => r.memberOf.join(','), max: 40 },
      { header: 'DISABLED', value: (r) => r.disabled ?? '' },
      ...(context.config.directories.length > 0 ? [{ header: 'DIRECTORY', value: (r: RoleJson) => r.directory ?? '' }] : []),
    ],
    rows,
    options.expiring ? `no role expires within ${options.expiring}` : 'no roles',
  );
}
