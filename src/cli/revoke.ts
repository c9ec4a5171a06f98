/**
 * `pgwarden revoke ROLE [--database D [--schema S]] [--dry-run] [--yes]`: revoke every privilege
 * ROLE holds, one ACL item at a time as its grantor, in every database pg_shdepend says holds
 * some (or only in D, or only in schema S of D). Plans, then acts: every blocker is found before
 * the first change, and with any it refuses (exit 2) listing them all. The restore SQL is printed
 * first and written to the audit log before anything is revoked. Memberships are left alone.
 */
import { auditRestorePoints, auditRoleAction } from '../actions/audit.js';
import { findRevokeBlockers, planRevoke, REVOKE_POLICY, revocableGrants, scopeFootprint, type RestoreStatement, type RevokeScope } from '../actions/revoke.js';
import { revokePrivileges, roleActionJson, type RoleActionPlan } from '../actions/role-actions.js';
import { visitDatabases } from '../db/databases.js';
import { fetchFootprint } from '../db/footprint.js';
import { fetchGrantorRights } from '../db/grantors.js';
import { fetchLocalGrants, fetchSharedGrants, type Grant } from '../db/grants.js';
import { VISIT_CONCURRENCY } from '../db/owned.js';
import type { TargetDb } from '../db/pool.js';
import { fetchGrantsTo } from '../db/privileges.js';
import { quoteIdent } from '../db/quote.js';
import { UsageError } from '../errors.js';
import { confirmAct } from './confirm.js';
import { loadContext, requireActionableRole, requireDatabase, requireIdentifierLength, singleTarget, withTargets, type GlobalOptions } from './context.js';
import type { Io, TextSink } from './io.js';
import { recordActions } from './metrics-file.js';
import { printBlockers, printJson, printTable } from './output.js';

export interface RevokeOptions {
  database?: string;
  schema?: string;
  dryRun?: boolean;
  yes?: boolean;
  target?: string;
  metricsFile?: string;
}

/**
 * The grants that cascade away with the role's grantable ones: those it handed on, and those
 * its grantees handed on in turn, on the same objects, in the order they were handed on. Read
 * only where the role holds something with the grant option (rarely): once per database.
 */
async function fetchHandedOn(db: TargetDb, role: string, held: readonly Grant[]): Promise<Grant[]> {
  const grantable = held.filter((g) => g.grantable && !g.defaults);
  if (grantable.length === 0) return [];
  const chain = async (read: (grantor: string) => Promise<Grant[]>, objects: ReadonlySet<string>) => {
    const out: Grant[] = [];
    const seen = new Set([role]);
    for (let frontier = [role]; frontier.length > 0; ) {
      const next: string[] = [];
      for (const grantor of frontier) {
        for (const g of await read(grantor)) {
          if (g.grantor !== grantor || g.grantee === grantor || g.membership || g.defaults || !objects.has(g.object)) continue;
          out.push(g);
          if (g.grantable && g.grantee !== 'PUBLIC' && !seen.has(g.grantee)) {
            seen.add(g.grantee);
            next.push(g.grantee);
          }
        }
      }
      frontier = next;
    }
    return out;
  };
  const objectsIn = (database: string | null) => new Set(grantable.filter((g) => g.database === database).map((g) => g.object));
  const out: Grant[] = [];
  const shared = objectsIn(null);
  if (shared.size > 0) {
    out.push(...(await chain((r) => fetchSharedGrants(db, r), shared)));
  }
  const databases = [...new Set(grantable.map((g) => g.database).filter((d): d is string => d !== null))];
  const visit = await visitDatabases(db, databases, (client, database) => chain((r) => fetchLocalGrants(client, database, r), objectsIn(database)), VISIT_CONCURRENCY);
  // A database that cannot be entered now was entered a moment ago: fail rather than record less.
  if (visit.skipped.length > 0) throw new Error(`could not read the grants handed on in ${visit.skipped.map((s) => `${JSON.stringify(s.database)} (${s.reason})`).join(', ')}`);
  for (const { value } of visit.results) out.push(...value);
  return out;
}

/** The restore SQL as a psql script: comments, `\connect` before each database's statements. */
function printRestore(out: TextSink, role: string, restore: readonly RestoreStatement[]): void {
  out.write(`-- restore SQL: run as a superuser (psql) to give back every privilege of ${quoteIdent(role)} revoked below\n`);
  let current: string | null = null;
  for (const r of restore) {
    if (r.database !== null && r.database !== current) out.write(`\\connect ${quoteIdent(r.database)}\n`);
    current = r.database ?? current;
    out.write(`${r.sql};\n`);
  }
}

async function printPlan(out: TextSink, actions: readonly RoleActionPlan[]): Promise<void> {
  await printTable(
    out,
    [
      { header: 'RESULT', value: (a: RoleActionPlan) => a.result },
      { header: 'DATABASE', value: (a) => a.database ?? '(shared)' },
      { header: 'SQL', value: (a) => a.sql },
    ],
    actions,
    'nothing to do',
  );
  for (const a of actions) if (a.detail) out.write(`note: ${a.sql}${a.database !== undefined ? ` in ${JSON.stringify(a.database)}` : ''}: ${a.detail}\n`);
}

function scopeText(scope: RevokeScope): string {
  if (scope.schema !== undefined) return ` in schema ${JSON.stringify(scope.schema)} of database ${JSON.stringify(scope.database)}`;
  if (scope.database !== undefined) return ` in database ${JSON.stringify(scope.database)}`;
  return '';
}

export async function runRevoke(role: string, options: RevokeOptions, globals: GlobalOptions, io: Io): Promise<void> {
  const context = loadContext(globals, io);
  if (options.schema !== undefined && options.database === undefined) throw new UsageError('--schema needs --database: a schema lives in one database');
  if (options.schema !== undefined) requireIdentifierLength('schema', options.schema);
  const scope: RevokeScope = { ...(options.database !== undefined ? { database: options.database } : {}), ...(options.schema !== undefined ? { schema: options.schema } : {}) };
  await withTargets(context, options.target, async (dbs) => {
    const db = singleTarget(dbs);
    await requireActionableRole(db, role);
    if (scope.database !== undefined) await requireDatabase(db, scope.database);

    // Every fact, read before any change: only the databases pg_shdepend says hold ACL entries of the role are entered.
    const footprint = scopeFootprint(await fetchFootprint(db, role), scope);
    const granted = await fetchGrantsTo(db, role, footprint);
    const grants = revocableGrants(granted.grants, role, scope);
    const rights = await fetchGrantorRights(db, [...new Set(grants.map((g) => g.defaults?.forRole ?? g.grantor))]);
    const blockers = findRevokeBlockers({ role, unvisited: granted.unvisited, footprint, grants, rights });
    if (blockers.length > 0) {
      if (context.json) await printJson(io.stdout, { actions: [], blockers });
      else printBlockers(io.stdout, `revoke ${role}`, blockers);
      io.raiseExitCode(2);
      return;
    }
    const plan = planRevoke(db.name, role, grants, await fetchHandedOn(db, role, grants));
    const output = () => ({ actions: plan.actions.map(roleActionJson), restore: plan.restore });
    const memberships = granted.grants.filter((g) => g.grant.membership).map((g) => quoteIdent(g.grant.membership?.group ?? ''));
    const membershipNote = () => {
      if (!context.json && memberships.length > 0) {
        io.stdout.write(`note: memberships are left alone: ${quoteIdent(role)} is still a member of ${[...new Set(memberships)].join(', ')} (offboard, or REVOKE group FROM role, removes them)\n`);
      }
    };
    if (plan.actions.length === 0) {
      if (context.json) await printJson(io.stdout, output());
      else io.stdout.write(`nothing to do: ${JSON.stringify(role)} holds no privilege${scopeText(scope)}\n`);
      membershipNote();
      return;
    }

    // The way back first, before anything is asked or done.
    if (!context.json) printRestore(io.stdout, role, plan.restore);
    const cascading = plan.actions.reduce((n, a) => n + (a.cascades?.length ?? 0), 0);
    if (cascading > 0) {
      (context.json ? io.stderr : io.stdout).write(
        `note: ${cascading} grant(s) that ${JSON.stringify(role)} (or its grantees) handed on with the grant option go with it (CASCADE); the restore SQL gives them back too\n`,
      );
    }
    const audit = context.logger.child({ component: 'audit' });
    if (options.dryRun) {
      // On a terminal the plan is printed once, readably: no audit line for what was not done.
      if (!io.interactive) for (const a of plan.actions) auditRoleAction(audit, REVOKE_POLICY, a, true);
      if (context.json) await printJson(io.stdout, output());
      else await printPlan(io.stdout, plan.actions);
      membershipNote();
      return;
    }
    if (!options.yes) {
      if (io.interactive) await printPlan(io.stderr, plan.actions);
      if (!(await confirmAct(io, options, `revoke ${plan.actions.length} privilege grant(s) from ${role}${scopeText(scope)}: proceed?`))) {
        io.stderr.write('pgwarden: nothing was done\n');
        return;
      }
    }
    // Restore points go to the audit log before the first REVOKE: nothing is lost if the run dies half-way.
    auditRestorePoints(audit, REVOKE_POLICY, plan.actions);
    await revokePrivileges(db, plan.actions, context.config.lockTimeoutMs);
    for (const a of plan.actions) auditRoleAction(audit, REVOKE_POLICY, a, false);
    await recordActions(options.metricsFile, context.config, plan.actions);
    if (context.json) await printJson(io.stdout, output());
    else await printPlan(io.stdout, plan.actions);
    membershipNote();
    if (plan.actions.some((a) => a.result === 'failed')) io.raiseExitCode(1);
  });
}
