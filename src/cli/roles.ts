/** `pgwarden roles`: login, superuser, expiry, days left, sessions, memberships, disabled. */
import type { Command } from 'commander';
import { parseDuration } from '../config/duration.js';
import type { Policy } from '../config/policies.js';
import { fetchRoles, fetchSessions, type RoleInfo } from '../db/snapshot.js';
import { UsageError } from '../errors.js';
import { reservedRole, type SelfRoles } from '../actions/planner.js';
import { directoryVerdicts, roleConditions } from '../policies/registry.js';
import type { RoleSources } from '../policies/kind.js';
import type { DirectoryVerdict } from '../directory/answer.js';
import { loadContext, searchDirectories, warnHidden, withTargets, type GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { printJson, printTable } from './output.js';

/** DESIGN.md `roles` shape (plus `target` when several servers are watched). */
export interface RoleJson {
  target: string;
  role: string;
  login: boolean;
  superuser: boolean;
  validUntil: Date | null;
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

interface RolesOptions {
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
 * --expiring, only roles whose finite expiry is within that window or already past.
 */
export function selectRoles(
  roles: readonly RoleInfo[],
  options: { all: boolean; expiringSeconds: number | undefined },
  policies: readonly Policy[],
  target: string,
  self: SelfRoles,
  sources: RoleSources,
): RoleJson[] {
  const conditionOf = roleConditions(policies, roles, sources);
  const verdictOf = directoryVerdicts(policies, sources);
  const withDirectories = sources.directories.length > 0;
  return roles
    .filter((r) => options.all || !r.role.startsWith('pg_'))
    .filter((r) => options.expiringSeconds === undefined || (r.validSeconds !== null && r.validSeconds <= options.expiringSeconds))
    // The snapshot comes in catalog order; shown by name (byte order, as PostgreSQL sorts `name`).
    .sort((a, b) => (a.role < b.role ? -1 : a.role > b.role ? 1 : 0))
    .map((r) => ({
      target,
      role: r.role,
      login: r.login,
      superuser: r.superuser,
      validUntil: r.validUntil,
      daysLeft: daysLeft(r.validSeconds),
      sessions: r.sessions,
      memberOf: r.memberOf,
      // A role no policy acts on (pgwarden's own, the bootstrap superuser) is never shown disabled.
      disabled: reservedRole(r.role, self) !== null ? null : conditionOf(r),
      ...(withDirectories ? { directory: reservedRole(r.role, self) !== null ? null : verdictOf(r) } : {}),
    }));
}

async function runRoles(options: RolesOptions, globals: GlobalOptions, io: Io): Promise<void> {
  let expiringSeconds: number | undefined;
  if (options.expiring !== undefined) {
    expiringSeconds = parseDuration(options.expiring);
    if (expiringSeconds === undefined) throw new UsageError(`--expiring: ${JSON.stringify(options.expiring)} is not a duration (e.g. 14d)`);
  }
  const context = loadContext(globals, io);
  const sources = await searchDirectories(context);
  const rows = await withTargets(context, options.target, async (dbs) => {
    const out: RoleJson[] = [];
    for (const db of dbs) {
      const snapshot = await fetchRoles(db);
      // The session counts include backends hidden from pgwarden's role; say that they are hidden.
      warnHidden(io, await fetchSessions(db));
      out.push(...selectRoles(snapshot.roles, { all: Boolean(options.all), expiringSeconds }, context.config.policies, db.name, snapshot.self, sources));
    }
    return out;
  });
  if (context.json) {
    printJson(io.stdout, rows);
    return;
  }
  const several = context.config.targets.length > 1;
  printTable(
    io.stdout,
    [
      ...(several ? [{ header: 'TARGET', value: (r: RoleJson) => r.target }] : []),
      { header: 'ROLE', value: (r) => r.role, max: 32 },
      { header: 'LOGIN', value: (r) => (r.login ? 'yes' : 'no') },
      { header: 'SUPERUSER', value: (r) => (r.superuser ? 'yes' : '') },
      { header: 'VALID UNTIL', value: (r) => (r.validUntil ? r.validUntil.toISOString().replace(/\.\d{3}Z$/, 'Z') : '') },
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

export function registerRoles(program: Command, io: Io): void {
  program
    .command('roles')
    .description('roles: login, superuser, valid until, days left, live sessions, memberships, disabled')
    .option('--expiring <duration>', 'only roles whose password expires within this window (e.g. 14d) or has expired')
    .option('--all', 'include the reserved pg_* roles')
    .option('--target <name>', 'only this target (with several configured)')
    .action(async (options: RolesOptions, command: Command) => {
      await runRoles(options, command.optsWithGlobals<GlobalOptions>(), io);
    });
}
