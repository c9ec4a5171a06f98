/**
 * `pgwarden offboard ROLE --reassign-to NEW [--drop] [--dry-run] [--yes] [--force]`: lock out,
 * terminate, REASSIGN OWNED and DROP OWNED in every database, then DROP ROLE with --drop. Shows
 * what ROLE owns before acting.
 */
import type { Command } from 'commander';
import { auditRoleAction } from '../actions/audit.js';
import { executeOffboard, planOffboard } from '../actions/offboard.js';
import { refuseUnalterable, roleActionJson, type RoleActionPlan } from '../actions/role-actions.js';
import { fetchAlterRefusals } from '../db/roles.js';
import { listConnectableDatabases } from '../db/databases.js';
import { fetchOwned } from '../db/owned.js';
import { fetchSessions } from '../db/snapshot.js';
import { UsageError } from '../errors.js';
import { confirmAct } from './confirm.js';
import { loadContext, requireActionableRole, requireRole, singleTarget, warnHidden, withTargets, type GlobalOptions } from './context.js';
import type { Io, TextSink } from './io.js';
import { METRICS_FILE_HELP, recordActions } from './metrics-file.js';
import { printJson, printTable } from './output.js';

interface OffboardOptions {
  reassignTo: string;
  drop?: boolean;
  dryRun?: boolean;
  yes?: boolean;
  force?: boolean;
  target?: string;
  metricsFile?: string;
}

function printPlan(out: TextSink, actions: readonly RoleActionPlan[]): void {
  printTable(
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

async function runOffboard(role: string, options: OffboardOptions, globals: GlobalOptions, io: Io): Promise<void> {
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

    const owned = await fetchOwned(db, role);
    const snapshot = await fetchSessions(db);
    warnHidden(io, snapshot);
    const plan = planOffboard({
      target: db.name,
      role,
      newOwner,
      login: info.login,
      sessions: snapshot.sessions,
      ownPids: db.ownPids,
      databases: await listConnectableDatabases(db),
      drop: Boolean(options.drop),
    });
    // A NOLOGIN pgwarden's role may not make fails now, and holds back every other step.
    if (plan.actions.some((a) => a.action === 'nologin')) refuseUnalterable(plan.actions, await fetchAlterRefusals(db, [role]));
    const audit = context.logger.child({ component: 'audit' });
    const output = () => ({
      actions: plan.actions.map(roleActionJson),
      databases: plan.databases,
      owned: owned.objects,
    });

    // What it owns, before anything moves.
    const show = context.json ? io.stderr : io.stdout;
    show.write(`${role} owns ${owned.objects.length} object(s); they go to ${newOwner}:\n`);
    printTable(
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
    for (const name of plan.unreachable) show.write(`warning: no CONNECT on database ${JSON.stringify(name)}: it cannot be offboarded there\n`);

    if (options.dryRun) {
      for (const a of plan.actions) auditRoleAction(audit, 'offboard', a, true);
      if (context.json) printJson(io.stdout, output());
      else printPlan(io.stdout, plan.actions);
      return;
    }
    if (!options.yes) {
      if (io.interactive) printPlan(io.stderr, plan.actions);
      if (!(await confirmAct(io, options, `offboard ${role} (${plan.actions.length} step(s)): proceed?`))) {
        io.stderr.write('pgwarden: nothing was done\n');
        return;
      }
    }
    await executeOffboard(plan, { db, lockTimeoutMs: context.config.lockTimeoutMs, audit });
    for (const a of plan.actions) auditRoleAction(audit, 'offboard', a, false);
    await recordActions(options.metricsFile, context.config, plan.actions);
    if (context.json) printJson(io.stdout, output());
    else {
      printPlan(io.stdout, plan.actions);
      io.stdout.write(`databases: ${Object.entries(plan.databases).map(([name, s]) => `${name}=${s}`).join(', ')}\n`);
    }
    if (plan.actions.some((a) => a.result === 'failed') || Object.values(plan.databases).some((s) => s !== 'done')) io.raiseExitCode(1);
  });
}

export function registerOffboard(program: Command, io: Io): void {
  program
    .command('offboard')
    .description('lock out, terminate, REASSIGN OWNED and DROP OWNED in every database, then DROP ROLE with --drop')
    .argument('<role>', 'the role to offboard')
    .requiredOption('--reassign-to <role>', 'the role that takes over what ROLE owns')
    .option('--drop', 'DROP ROLE once every database is done')
    .option('--dry-run', 'only print the SQL')
    .option('--yes', 'do not ask for confirmation')
    .option('--force', 'allow offboarding a superuser')
    .option('--metrics-file <path>', METRICS_FILE_HELP)
    .option('--target <name>', 'the target (with several configured)')
    .action(async (role: string, options: OffboardOptions, command: Command) => {
      await runOffboard(role, options, command.optsWithGlobals<GlobalOptions>(), io);
    });
}
