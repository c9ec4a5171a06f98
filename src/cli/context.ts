/**
 * What every command that talks to PostgreSQL needs: the loaded configuration, a logger, the
 * target pools, and one place that closes them all. Configuration is loaded and validated before
 * any connection is opened, so bad configuration exits 2 having touched nothing.
 */
import type { Logger } from 'pino';
import { loadConfig, type Config } from '../config/load.js';
import { UsageError } from '../errors.js';
import { TargetDb } from '../db/pool.js';
import { databaseExists } from '../db/databases.js';
import { fetchRoleFacts, roleExists, type RoleFacts } from '../db/roles.js';
import { hiddenSessionsWarning, type Snapshot } from '../db/snapshot.js';
import { reservedRole } from '../actions/planner.js';
import { createLogger } from '../log.js';
import type { Directories, DirectoryView } from '../directory/watcher.js';
import { askedDirectories, directoriesAskedBy } from '../policies/registry.js';
import type { RoleSources } from '../policies/kind.js';
import type { Io } from './io.js';

/** Options every command accepts (DESIGN.md global flags). */
export interface GlobalOptions {
  readonly config?: string;
  readonly databaseUrl?: string;
  readonly mode?: string;
  readonly json?: boolean;
  readonly logLevel?: string;
}

export interface Context {
  readonly config: Config;
  readonly logger: Logger;
  readonly io: Io;
  readonly json: boolean;
}

/** Loads the configuration and a logger writing to the command's stderr. */
export function loadContext(globals: GlobalOptions, io: Io): Context {
  const config = loadConfig(
    { configFile: globals.config, databaseUrl: globals.databaseUrl, mode: globals.mode, logLevel: globals.logLevel },
    io.env,
  );
  const logger = createLogger(config.settings.log.level, io.stderr);
  return { config, logger, io, json: Boolean(globals.json) };
}

/**
 * Opens a pool per selected target (all, or the one named by `--target`), runs `fn`, and closes
 * every pool whatever happens.
 */
export async function withTargets<T>(
  context: Context,
  targetName: string | undefined,
  fn: (targets: readonly TargetDb[]) => Promise<T>,
): Promise<T> {
  const { config } = context;
  const selected = targetName === undefined ? config.targets : config.targets.filter((t) => t.name === targetName);
  if (selected.length === 0) {
    throw new UsageError(`--target ${targetName}: no such target (configured: ${config.targets.map((t) => t.name).join(', ')})`);
  }
  const options = {
    connectTimeoutMs: config.connectTimeoutMs,
    statementTimeoutMs: config.statementTimeoutMs,
    poolSize: config.settings.database.poolSize,
  };
  const dbs = selected.map((t) => new TargetDb(t, options, context.logger));
  try {
    return await fn(dbs);
  } finally {
    await Promise.allSettled(dbs.map((db) => db.end()));
  }
}

/** The one target a command that acts on a single server uses. */
export function singleTarget(dbs: readonly TargetDb[]): TargetDb {
  if (dbs.length !== 1) {
    throw new UsageError(`several targets are configured (${dbs.map((d) => d.name).join(', ')}): choose one with --target`);
  }
  return dbs[0] as TargetDb;
}

/** PostgreSQL truncates identifiers to 63 bytes: a longer name would silently mean another one. */
export function requireIdentifierLength(what: string, name: string): void {
  if (Buffer.byteLength(name, 'utf8') > 63) {
    throw new UsageError(`${what} ${JSON.stringify(name)} is longer than 63 bytes: PostgreSQL would truncate it and act on another name`);
  }
}

/** Fails with exit 2 when `role` does not exist on the target. */
export async function requireRole(db: TargetDb, role: string): Promise<void> {
  requireIdentifierLength('role', role);
  if (!(await roleExists(db, role))) throw new UsageError(`role ${JSON.stringify(role)} does not exist on target ${db.name}`);
}

/** Fails with exit 2 when `database` does not exist on the target. */
export async function requireDatabase(db: TargetDb, database: string): Promise<void> {
  requireIdentifierLength('database', database);
  if (!(await databaseExists(db, database))) throw new UsageError(`database ${JSON.stringify(database)} does not exist on target ${db.name}`);
}

/**
 * Refuses (exit 2) a role no command may act on, before anything is changed: a reserved pg_*
 * role (before any SQL), one that does not exist, the role pgwarden is connected as (it would
 * lock itself out), and the bootstrap superuser. Returns the role's facts.
 */
export async function requireActionableRole(db: TargetDb, role: string, what = 'role'): Promise<RoleFacts> {
  requireIdentifierLength(what, role);
  if (role.startsWith('pg_')) throw new UsageError(`${what} ${JSON.stringify(role)} is a reserved pg_* role: pgwarden never acts on it`);
  const facts = await fetchRoleFacts(db, [role]);
  const found = facts.roles.get(role);
  if (!found) throw new UsageError(`${what} ${JSON.stringify(role)} does not exist on target ${db.name}`);
  const reason = reservedRole(role, facts.self);
  if (reason !== null) {
    const hint = reason === 'the role pgwarden is connected as' ? ' (connect as another role to act on it)' : '';
    throw new UsageError(`${what} ${JSON.stringify(role)} is ${reason}: pgwarden never acts on it${hint}`);
  }
  return found;
}

/** Says on stderr, once per snapshot, that the server hides sessions from pgwarden (and the fix). */
export function warnHidden(io: Io, snapshot: Snapshot): void {
  const warning = hiddenSessionsWarning(snapshot);
  if (warning) io.stderr.write(`pgwarden: warning: ${warning}\n`);
}

/**
 * For a command (`roles`, `doctor`): the directories the policies ask, searched now, in parallel,
 * each within its timeout, with the errors (the command says them; the watchers' own log lines,
 * which would repeat them, are silenced).
 */
export async function searchAskedDirectories(context: Context): Promise<{ directories: Directories; errors: string[] }> {
  // prom-client takes a tenth of a second to load: only the commands that search pay for it.
  const { Metrics } = await import('../metrics/registry.js');
  const directories = directoriesAskedBy(context.config, {
    metrics: new Metrics(context.config.settings.metrics),
    log: context.logger.child({ component: 'directory' }, { level: 'silent' }),
    clock: Date.now,
  });
  return { directories, errors: await directories.refresh() };
}

/**
 * For a command that shows what the directories say (`roles`): the sources a role policy is
 * judged with, after searching (searchAskedDirectories). A failed search is said on stderr; its
 * directory then decides nothing (verdict `unknown`).
 */
export async function searchDirectories(context: Context): Promise<RoleSources> {
  const { exempt, safety } = context.config.settings;
  const names = context.config.directories.map((d) => d.name);
  if (askedDirectories(context.config.policies).size === 0) {
    // No policy asks a directory (the usual case), so no view is ever read: nothing to search,
    // and no registry for watchers (prom-client alone takes a tenth of a second to load).
    const directory = (name: string): DirectoryView => ({ name, roles: [], roleAttribute: '', answer: undefined, problem: 'asked by no policy' });
    return { directory, directories: names, exempt, safety, now: Date.now() };
  }
  const { directories, errors } = await searchAskedDirectories(context);
  for (const error of errors) context.io.stderr.write(`pgwarden: warning: ${error}; its verdicts are unknown\n`);
  return { directory: (name) => directories.view(name), directories: names, exempt, safety, now: Date.now() };
}
