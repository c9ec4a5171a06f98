/**
 * `pgwarden run` (the daemon), `pgwarden run --once` (every policy once, then exit) and
 * `pgwarden plan` (every policy once in dry-run, printing violations and the exact SQL).
 */
import type { Mode, Policy } from '../config/policies.js';
import type { ActionJson, ViolationJson } from '../actions/types.js';
import { startDaemon } from '../daemon.js';
import { Engine } from '../engine.js';
import { LeaderLock } from '../leader.js';
import { Metrics } from '../metrics/registry.js';
import { ConfigError } from '../errors.js';
import { loadContext, withTargets, type Context, type GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { listenForInterrupt } from './signals.js';
import { printJson } from './output.js';

/** DESIGN.md `plan` / `run --once` shape. */
export interface RunOutput {
  mode: Mode;
  violations: ViolationJson[];
  actions: ActionJson[];
  errors?: string[];
  /** What pgwarden could not see or do (hidden sessions, roles it never acts on), each said once. */
  warnings?: string[];
}

async function printRun(context: Context, output: RunOutput): Promise<void> {
  const { io } = context;
  if (context.json) {
    await printJson(io.stdout, output);
    return;
  }
  io.stdout.write(`mode: ${output.mode}; ${output.violations.length} violation(s), ${output.actions.length} action(s)\n`);
  for (const v of output.violations) {
    io.stdout.write(`\n[${v.target}] ${v.policy} (${v.kind}): pid ${v.pid ?? '-'} role ${v.role ?? '-'} database ${v.database ?? '-'} application ${v.application ?? '-'}\n  ${v.reason}\n`);
    // A role violation (no pid) owns every action on its role, its sessions' terminations included.
    const own = (x: RunOutput['actions'][number]) => x.target === v.target && x.policy === v.policy && x.role === v.role && (v.pid === undefined || x.pid === v.pid);
    for (const a of output.actions.filter(own)) {
      io.stdout.write(`  -> ${a.action}: ${a.result}${a.detail ? ` (${a.detail})` : ''}\n`);
      io.stdout.write(`${a.sql.replace(/^/gm, '     ')};\n`);
    }
  }
  for (const e of output.errors ?? []) io.stderr.write(`pgwarden: ${e}\n`);
}

/** Warnings go to stderr whatever the output format, before the output. */
function printWarnings(context: Context, output: RunOutput): void {
  for (const w of output.warnings ?? []) context.io.stderr.write(`pgwarden: warning: ${w}\n`);
}

/** Runs every policy once. */
async function runOnce(context: Context, modeFor: (engine: Engine, policy: Policy) => Mode, globalMode: Mode): Promise<RunOutput> {
  return withTargets(context, undefined, async (dbs) => {
    const warnings: string[] = [];
    const engine = new Engine({
      config: context.config,
      targets: dbs,
      metrics: new Metrics(context.config.settings.metrics),
      logger: context.logger,
      onWarning: (_target, message) => warnings.push(message),
    });
    const policies = context.config.policies;
    // `run --once` takes the leader lock too, so a CronJob beside a Deployment cannot double-enforce.
    const enforcing = policies.some((p) => modeFor(engine, p) === 'enforce');
    const locks = enforcing ? dbs.map((db) => [db, new LeaderLock(db, context.config.settings.leader.lockKey, context.logger.child({ target: db.name }))] as const) : [];
    for (const [db, lock] of locks) engine.setLeader(db.name, await lock.poll());
    let result;
    try {
      result = await engine.runAll(policies, (p) => modeFor(engine, p));
    } finally {
      await Promise.all(locks.map(([, lock]) => lock.close()));
    }
    return {
      mode: globalMode,
      violations: result.violations,
      actions: result.actions,
      ...(result.errors.length > 0 ? { errors: result.errors } : {}),
      ...(warnings.length > 0 ? { warnings } : {}),
    };
  });
}

/** `run` and `plan` with no policy would do nothing, silently: almost surely a wrong file. */
function requirePolicies(context: Context): Context {
  if (context.config.policies.length === 0) {
    throw new ConfigError(`policies: none configured${context.config.source ? ` in ${context.config.source}` : ''}: nothing to run (see config/pgwarden.example.yaml)`);
  }
  return context;
}

/** `run` options. */
export interface RunOptions {
  once?: boolean;
}

/** `plan` options. */
export interface PlanOptions {
  exitCode?: boolean;
}

/** `pgwarden run`: the daemon, or with `--once` every policy once. */
export async function runPolicies(options: RunOptions, globals: GlobalOptions, io: Io): Promise<void> {
  const context = requirePolicies(loadContext(globals, io));
  if (options.once) {
    const output = await runOnce(context, (engine, p) => engine.modeOf(p), context.config.mode);
    printWarnings(context, output);
    await printRun(context, output);
    if (output.errors || output.actions.some((a) => a.result === 'failed')) io.raiseExitCode(1);
    return;
  }
  const outcome = await withTargets(context, undefined, async (dbs) => {
    const daemon = await startDaemon({ config: context.config, targets: dbs, logger: context.logger, stopSignal: listenForInterrupt(io).interrupted });
    return daemon.done;
  });
  // An abandoned statement keeps its socket open until the server answers: leave now rather
  // than wait for it (the server ends the statement when the connection goes).
  if (outcome.abandoned) process.exit(0);
}

/** `pgwarden plan`: every policy once in dry-run. */
export async function runPlan(options: PlanOptions, globals: GlobalOptions, io: Io): Promise<void> {
  const context = requirePolicies(loadContext(globals, io));
  const output = await runOnce(context, () => 'dry-run', 'dry-run');
  printWarnings(context, output);
  await printRun(context, output);
  // What pgwarden could not do if it enforced (a backend it cannot signal) fails here too.
  if (output.errors || output.actions.some((a) => a.result === 'failed')) io.raiseExitCode(1);
  if (options.exitCode && output.violations.length > 0) io.raiseExitCode(3);
}
