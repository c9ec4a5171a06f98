/**
 * `pgwarden offboard ROLE --reassign-to NEW [--drop] [--dry-run] [--yes] [--force]`: lock out,
 * terminate, REASSIGN OWNED and DROP OWNED in every database that holds something of ROLE, then
 * DROP ROLE with --drop. Plans, then acts: every blocker is found before the first change, and
 * with any it refuses (exit 2) listing them all with their fixes. Shows what ROLE owns first.
 */
import { auditRoleAction } from '../actions/audit.js';
import { executeOffboard, findBlockers, offboardDatabases, planOffboard, trialOffboard } from '../actions/offboard.js';
import { roleActionJson, type RoleActionPlan } from '../actions/role-actions.js';
import { fetchAlterRefusals, fetchOwnershipGaps, fetchReassignRights, fetchRoleFacts } from '../db/roles.js';
import { visitDatabases } from '../db/databases.js';
import { fetchOwned, unenterable, VISIT_CONCURRENCY } from '../db/owned.js';
import { fetchGrantsTo } from '../db/privileges.js';
import { fetchSessions } from '../db/snapshot.js';
import { UsageError } from '../errors.js';
import { confirmAct } from './confirm.js';
import { loadContext, requireActionableRole, requireRole, singleTarget, warnHidden, withTargets, type GlobalOptions } from './context.js';
import type { Io, TextSink } from './io.js';
import { recordActions } from './metrics-file.js';
import { printBlockers, printJson, printTable } from './output.js';

export interface OffboardOptions {
  reassignTo: string;
  drop?: boolean;
  dryRun?: boolean;
  yes?: boolean;
  force?: boolean;
  target?: string;
  metricsFile?: string;
}

async function printPlan(out: TextSink, actions: readonly RoleActionPlan[]): Promise<void> {
  await printTable(
    out,
    [
      { header: 'RESULT', value: (a: RoleActionPlan) => a.result },
      { header: 'ACTION', value: (a) => a.action },
      { header: 'DATABASE', value: (a) => a.database ?? a.session?.database },
      { header: 'PID', value: (a) => a.session?.pid, right: true },
      { header: 'SQL', value: (a) => a.sql.replace(/\s+/g, ' '), max: 100 },
    ],
    actions,
    'nothing to do',
  );
  for (const a of actions) if (a.detail && a.result !== 'planned') out.write(`note: ${a.action}${a.database ? ` in ${a.database}` : ''}: ${a.detail}\n`);
}

export async function runOffboard(role: string, options: OffboardOptions, globals: GlobalOptions, io: Io): Promise<void> {
  const context = loadContext(globals, io);
  const newOwner = options.reassignTo;
  if (role === newOwner) throw new UsageError('--reassign-to must name another role than the one offboarded');
  if (role.startsWith('pg_')) throw new UsageError(`role ${JSON.stringify(role)} is a reserved pg_* role: pgwarden never acts on it`);
  await withTargets(context, options.target, async (dbs) => {
    const db = singleTarget(dbs);
    const info = await requireActionableRole(db, role);
    await requireRole(db, newOwner).catch((err: unknown) => {
      throw err instanceof UsageError ? new UsageError(`--reassign-to: ${err.message}`) : err;
    });
    if (info.superuser && !options.force) throw new UsageError(`${JSON.stringify(role)} is a superuser: pass --force to offboard it`);

    // Every fact, read before any change: only the databases pg_shdepend says hold something of the role are entered.
    const owned = await fetchOwned(db, role);
    const granted = await fetchGrantsTo(db, role, owned.footprint);
    const { self } = await fetchRoleFacts(db, []);
    const rights = await fetchReassignRights(db, role, newOwner, [...new Set(granted.grants.map((g) => g.grantor))]);
    const blockers = findBlockers({
      role,
      newOwner,
      me: self.currentRole,
      bootstrapRole: self.bootstrapRole,
      login: info.login,
      drop: Boolean(options.drop),
      footprint: owned.footprint,
      unvisited: [...owned.unvisited, ...granted.unvisited],
      owned: owned.objects,
      grants: granted.grants,
      rights,
      alterRefusal: (await fetchAlterRefusals(db, [role])).get(role) ?? null,
    });
    // Kinds whose new owner must hold something (servers, publications) and policies naming the
    // role, unless a superuser acts: asked only where the role has some.
    const withRules = rights.superuser
      ? []
      : [
          ...new Set([
            ...owned.objects.filter((o) => o.type === 'server' || o.type === 'publication').map((o) => o.database as string),
            ...owned.footprint.filter((d) => d.database !== null && d.policies > 0 && !unenterable(d)).map((d) => d.database as string),
          ]),
        ];
    const gaps = await visitDatabases(db, withRules, (client) => fetchOwnershipGaps(client, role, newOwner), VISIT_CONCURRENCY);
    for (const { database, value } of gaps.results) {
      for (const g of value) blockers.push({ kind: g.fix === null ? 'superuser_owned_kind' : 'missing_privileges', database, object: g.object, detail: g.detail, fix: g.fix });
    }
    // None found by the rules: the server has the last word, on a trial rolled back in each database.
    if (blockers.length === 0) {
      const trial = await trialOffboard(db, offboardDatabases(owned.footprint, db.where.database), role, newOwner, context.config.lockTimeoutMs);
      blockers.push(...trial.blockers);
      for (const d of trial.unchecked) io.stderr.write(`pgwarden: warning: database ${JSON.stringify(d)} could not be checked (a lock was not granted in time); the offboard will wait there as it does everywhere\n`);
    }
    const show = context.json ? io.stderr : io.stdout;
    if (blockers.length > 0) {
      // Refused as a whole: the role keeps LOGIN and its sessions, nothing is half done.
      if (context.json) await printJson(io.stdout, { actions: [], blockers, owned: [...owned.objects, ...owned.unvisited] });
      else printBlockers(io.stdout, `offboard ${role}`, blockers);
      io.raiseExitCode(2);
      return;
    }

    const snapshot = await fetchSessions(db);
    warnHidden(io, snapshot);
    const plan = planOffboard({
      target: db.name,
      role,
      newOwner,
      login: info.login,
      sessions: snapshot.sessions,
      ownPids: db.ownPids,
      databases: offboardDatabases(owned.footprint, db.where.database).map((name) => ({ name, canConnect: true })),
      drop: Boolean(options.drop),
    });
    const audit = context.logger.child({ component: 'audit' });
    const output = () => ({
      actions: plan.actions.map(roleActionJson),
      databases: plan.databases,
      owned: owned.objects,
    });

    // What it owns, before anything moves.
    show.write(`${role} owns ${owned.objects.length} object(s); they go to ${newOwner}:\n`);
    await printTable(
      show,
      [
        { header: 'DATABASE', value: (o: (typeof owned.objects)[number]) => o.database },
        { header: 'TYPE', value: (o) => o.type },
        { header: 'SCHEMA', value: (o) => o.schema },
        { header: 'NAME', value: (o) => o.name, max: 80 },
      ],
      owned.objects,
      '(nothing)',
    );

    if (options.dryRun) {
      // On a terminal the plan is printed once, readably: no audit line for what was not done.
      if (!io.interactive) for (const a of plan.actions) auditRoleAction(audit, 'offboard', a, true);
      if (context.json) await printJson(io.stdout, output());
      else await printPlan(io.stdout, plan.actions);
      return;
    }
    if (!options.yes) {
      if (io.interactive) await printPlan(io.stderr, plan.actions);
      if (!(await confirmAct(io, options, `offboard ${role} (${plan.actions.length} step(s)): proceed?`))) {
        io.stderr.write('pgwarden: nothing was done\n');
        return;
      }
    }
    await executeOffboard(plan, { db, lockTimeoutMs: context.config.lockTimeoutMs, audit });
    for (const a of plan.actions) auditRoleAction(audit, 'offboard', a, false);
    await recordActions(options.metricsFile, context.config, plan.actions);
    if (context.json) await printJson(io.stdout, output());
    else {
      await printPlan(io.stdout, plan.actions);
      io.stdout.write(`databases: ${Object.entries(plan.databases).map(([name, s]) => `${name}=${s}`).join(', ') || '(none held anything of the role)'}\n`);
    }
    if (plan.actions.some((a) => a.result === 'failed') || Object.values(plan.databases).some((s) => s !== 'done')) io.raiseExitCode(1);
  });
}
