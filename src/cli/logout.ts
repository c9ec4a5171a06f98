/**
 * `pgwarden logout ROLE [--database DB] [--lock]`: end ROLE's sessions (only in DB with
 * --database); --lock makes ROLE NOLOGIN first so it cannot reconnect in between.
 * `pgwarden logout --database DB [--lock | --lock=all]`: end everyone's sessions in DB but
 * pgwarden's own; --lock first revokes CONNECT from PUBLIC and every grantee, --lock=all sets
 * ALLOW_CONNECTIONS false. Prints the SQL that undoes the lock.
 */
import { auditRoleAction } from '../actions/audit.js';
import { lockDatabasePlans } from '../actions/database-lock.js';
import { fetchConnectGrantees } from '../db/lock-database.js';
import { endSessionsAfterLock } from '../actions/lockout.js';
import { NO_EXEMPTIONS, reservedRole, skipPlanned } from '../actions/planner.js';
import { nologinPlan, planTerminations, refuseUnalterable, roleActionJson, runDdlPlans, type RoleActionPlan } from '../actions/role-actions.js';
import { fetchAlterRefusals } from '../db/roles.js';
import { fetchSessions, type Session, type Snapshot } from '../db/snapshot.js';
import { UsageError } from '../errors.js';
import { confirmAct } from './confirm.js';
import { loadContext, requireActionableRole, requireDatabase, singleTarget, warnHidden, withTargets, type GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { recordActions } from './metrics-file.js';
import { printJson, printTable } from './output.js';

export interface LogoutOptions {
  database?: string;
  lock?: boolean | string;
  yes?: boolean;
  dryRun?: boolean;
  target?: string;
  metricsFile?: string;
}

/** Prints the plan or the outcome: a table, or `{actions, undo}` as JSON. */
async function printActions(io: Io, json: boolean, actions: readonly RoleActionPlan[], undo: readonly string[]): Promise<void> {
  if (json) {
    await printJson(io.stdout, { actions: actions.map(roleActionJson), ...(undo.length > 0 ? { undo } : {}) });
    return;
  }
  await printTable(
    io.stdout,
    [
      { header: 'RESULT', value: (a: RoleActionPlan) => a.result },
      { header: 'ACTION', value: (a) => a.action },
      { header: 'ROLE', value: (a) => a.role },
      { header: 'PID', value: (a) => a.session?.pid, right: true },
      { header: 'DATABASE', value: (a) => a.database ?? a.session?.database },
      { header: 'SQL', value: (a) => a.sql.replace(/\s+/g, ' '), max: 100 },
    ],
    actions,
    'nothing to do',
  );
  for (const a of actions) if (a.detail) io.stdout.write(`note: ${a.action} ${a.role}${a.database ? ` on ${a.database}` : ''}: ${a.detail}\n`);
  if (undo.length > 0) io.stdout.write(`\nto undo the lock:\n${undo.map((u) => `  ${u};`).join('\n')}\n`);
}

export async function runLogout(role: string | undefined, options: LogoutOptions, globals: GlobalOptions, io: Io): Promise<void> {
  if (role === undefined && options.database === undefined) throw new UsageError('logout: name a ROLE, or --database DB to end everyone\'s sessions there');
  const lockAll = options.lock === 'all';
  if (typeof options.lock === 'string' && !lockAll) throw new UsageError(`--lock: ${JSON.stringify(options.lock)} is not valid (use --lock or --lock=all)`);
  if (role !== undefined && lockAll) throw new UsageError('--lock=all locks a database: use it with --database DB and no ROLE');
  if (role?.startsWith('pg_')) throw new UsageError(`role ${JSON.stringify(role)} is a reserved pg_* role: pgwarden never acts on it`);
  const context = loadContext(globals, io);
  await withTargets(context, options.target, async (dbs) => {
    const db = singleTarget(dbs);
    const facts = role !== undefined ? await requireActionableRole(db, role) : undefined;
    if (options.database !== undefined) await requireDatabase(db, options.database);
    const snapshot = await fetchSessions(db);
    warnHidden(io, snapshot);
    let lock: RoleActionPlan[] = [];
    if (role !== undefined && options.lock && facts?.login) lock.push(nologinPlan(db.name, 'logout', role));
    if (role === undefined && options.lock) {
      const database = options.database as string;
      const grantees = lockAll ? [] : await fetchConnectGrantees(db, database);
      // pgwarden's own CONNECT (and the bootstrap superuser's) is never revoked: it would lock itself out.
      const kept = grantees.filter((g) => reservedRole(g, snapshot.self) !== null);
      if (kept.length > 0) io.stderr.write(`pgwarden: CONNECT of ${kept.map((g) => JSON.stringify(g)).join(', ')} on ${JSON.stringify(database)} is kept: pgwarden never acts on ${kept.length > 1 ? 'them' : 'it'}\n`);
      lock.push(...lockDatabasePlans(db.name, database, grantees.filter((g) => !kept.includes(g)), lockAll));
    }
    // Pure: which sessions to end, from a snapshot. Run once for the plan shown, and again on a
    // fresh read once the lock has committed (a session that logged in meanwhile is ended too).
    const terminations = (from: Snapshot) =>
      planTerminations(
        {
          target: db.name,
          policy: 'logout',
          ...(role !== undefined ? { roles: new Set([role]) } : {}),
          ...(options.database !== undefined ? { database: options.database } : {}),
          exempt: NO_EXEMPTIONS,
          ownPids: db.ownPids,
          self: from.self,
        },
        from.sessions,
      );
    let preview = [...lock, ...terminations(snapshot)];
    // A NOLOGIN pgwarden's role may not make is failed now, and nothing else is done to the role.
    if (lock.some((a) => a.action === 'nologin')) {
      preview = refuseUnalterable(preview, await fetchAlterRefusals(db, [role as string])).plans;
      lock = preview.slice(0, lock.length);
    }
    // What undoes the lock: of the statements planned, or (once run) of those that were done.
    const undoOf = (plans: readonly RoleActionPlan[]) => plans.flatMap((a) => (a.restore && (a.result === 'planned' || a.result === 'done') ? [a.restore] : []));
    const undo = undoOf(lock);
    if (options.database !== undefined && role === undefined && options.lock && !lockAll) {
      io.stderr.write(`pgwarden: after the revoke, superusers and the owner of ${JSON.stringify(options.database)} can still connect (use --lock=all to stop them too)\n`);
    }
    const audit = context.logger.child({ component: 'audit' });
    if (options.dryRun || preview.length === 0) {
      // On a terminal the plan is printed once, readably: no audit line for what was not done.
      if (!io.interactive) for (const a of preview) auditRoleAction(audit, 'logout', a, true);
      await printActions(io, context.json, preview, undo);
      if (preview.some((a) => a.result === 'failed')) io.raiseExitCode(1);
      return;
    }
    if (!options.yes) {
      // The plan goes to stderr, beside the question; stdout keeps the outcome.
      if (io.interactive) await printActions({ ...io, stdout: io.stderr }, false, preview, undo);
      if (!(await confirmAct(io, options, `${preview.length} action(s) on ${db.name}: proceed?`))) {
        io.stderr.write('pgwarden: nothing was done\n');
        return;
      }
    }
    // The lock first (NOLOGIN, or the database's), so nobody reconnects between the kill and the lock.
    await runDdlPlans(db, lock, context.config.lockTimeoutMs);
    let kills: RoleActionPlan[];
    if (lock.some((a) => a.result === 'failed')) {
      kills = skipPlanned(
        preview.filter((a) => a.action === 'terminate'),
        'the lock failed: sessions left alone so nothing reconnects unlocked',
      );
    } else {
      // Who can no longer be connected once the lock holds: whatever of theirs shows up is ended too.
      const lockedOut =
        role !== undefined && (options.lock || facts?.login === false)
          ? (s: Session) => s.role === role && (options.database === undefined || s.database === options.database)
          : lockAll
            ? (s: Session) => s.database === options.database
            : undefined;
      kills = await endSessionsAfterLock(db, { read: () => fetchSessions(db), plan: terminations, ...(lockedOut ? { lockedOut } : {}) });
    }
    const actions = [...lock, ...kills];
    for (const a of actions) auditRoleAction(audit, 'logout', a, false);
    await recordActions(options.metricsFile, context.config, actions);
    await printActions(io, context.json, actions, undoOf(lock));
    if (actions.some((a) => a.result === 'failed')) io.raiseExitCode(1);
  });
}
