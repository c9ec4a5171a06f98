/**
 * Every command's definition: its name, arguments, options and help — all that commander needs to
 * parse a command line and print `--help`. The module that does the work (`src/cli/<command>.ts`,
 * with pg, pino, prom-client, the engine…) is imported only when its command runs, so that
 * `--version`, `--help` and each command load only what they use (issue 19: the imports alone
 * took 0.3 s). Hence the one rule of this file: a command module is imported here with `import
 * type` or `await import()`, never statically (test/architecture.test.ts checks the start-up
 * graph).
 */
import { Option, type Command } from 'commander';
import { SESSION_STATES } from '../config/reader.js';
import type { AccessOptions } from './access.js';
import type { AddUserOptions } from './adduser.js';
import type { GlobalOptions } from './context.js';
import type { DemoFlags } from './demo.js';
import type { Io } from './io.js';
import type { LogoutOptions } from './logout.js';
import type { OffboardOptions } from './offboard.js';
import type { OwnedOptions } from './owned.js';
import type { PasswdOptions } from './passwd.js';
import type { RevokeOptions } from './revoke.js';
import type { RolesOptions } from './roles.js';
import type { PlanOptions, RunOptions } from './run.js';
import type { SessionsOptions } from './sessions.js';

/** The command line itself (program.ts's runCli), for `demo`, which runs commands. */
export type RunCommand = (argv: readonly string[], io: Io) => Promise<number>;

const METRICS_FILE_HELP = "add this run's pgwarden_actions_total to a node_exporter textfile (counts accumulate)";

/** A repeatable option's values, in order. */
const collect = (value: string, previous: string[]) => [...previous, value];

/** The global flags with the command's own, as the command module takes them. */
const globalsOf = (command: Command) => command.optsWithGlobals<GlobalOptions>();

export function registerRun(program: Command, io: Io): void {
  program
    .command('run')
    .description('the daemon: schedules every policy, serves /metrics, /healthz, /readyz')
    .option('--once', 'run every policy once, now, then exit (for a CronJob or a test)')
    .action(async (options: RunOptions, command: Command) => {
      const { runPolicies } = await import('./run.js');
      await runPolicies(options, globalsOf(command), io);
    });

  program
    .command('plan')
    .description('every policy once in dry-run: prints violations and the exact SQL it would run')
    .option('--exit-code', 'exit 3 when anything violates')
    .action(async (options: PlanOptions, command: Command) => {
      const { runPlan } = await import('./run.js');
      await runPlan(options, globalsOf(command), io);
    });
}

export function registerSessions(program: Command, io: Io): void {
  program
    .command('sessions')
    .description("active connections: pg_stat_activity's client backends, with ages by the server's clock")
    .option('--role <role>', 'only sessions of this role')
    .option('--database <database>', 'only sessions in this database')
    .addOption(new Option('--state <state>', 'only sessions in this state').choices(SESSION_STATES))
    .option('--all', 'every backend type, not only client backends')
    .option('--summary', 'connection slots used and usable, and the groups holding the most idle sessions (for "too many clients")')
    .option('--target <name>', 'only this target (with several configured)')
    .action(async (options: SessionsOptions, command: Command) => {
      const { runSessions } = await import('./sessions.js');
      await runSessions(options, globalsOf(command), io);
    });
}

export function registerRoles(program: Command, io: Io): void {
  program
    .command('roles')
    .description('roles: login, superuser, valid until, days left, live sessions, memberships, disabled')
    .option('--expiring <duration>', 'only roles whose password expires within this window (e.g. 14d) or has expired')
    .option('--all', 'include the reserved pg_* roles')
    .option('--target <name>', 'only this target (with several configured)')
    .action(async (options: RolesOptions, command: Command) => {
      const { runRoles } = await import('./roles.js');
      await runRoles(options, globalsOf(command), io);
    });
}

export function registerLocks(program: Command, io: Io): void {
  program
    .command('locks')
    .description('who blocks whom: lock chains as a tree, root blockers first, with wait times')
    .option('--target <name>', 'only this target (with several configured)')
    .action(async (options: { target?: string }, command: Command) => {
      const { runLocks } = await import('./locks.js');
      await runLocks(options, globalsOf(command), io);
    });
}

export function registerOwned(program: Command, io: Io): void {
  program
    .command('owned')
    .description('every object ROLE owns, in every database that holds any (pg_shdepend): any kind, named as pg_identify_object names it')
    .argument('<role>', 'the role (exact name, any characters)')
    .option('--privileges', 'also what ROLE was granted (ACL entries and memberships), and by whom')
    .option('--target <name>', 'the target (with several configured)')
    .action(async (role: string, options: OwnedOptions, command: Command) => {
      const { runOwned } = await import('./owned.js');
      await runOwned(role, options, globalsOf(command), io);
    });
}

export function registerLogout(program: Command, io: Io): void {
  program
    .command('logout')
    .description("end ROLE's sessions (--lock: NOLOGIN first), or everyone's in --database DB (--lock: revoke CONNECT first; --lock=all: ALLOW_CONNECTIONS false)")
    .argument('[role]', 'the role whose sessions to end')
    .option('--database <database>', 'only sessions in this database; without ROLE, everyone\'s there')
    .option('--lock [scope]', 'lock first so nobody reconnects: NOLOGIN for ROLE; for a database, revoke CONNECT (or --lock=all)')
    .option('--yes', 'do not ask for confirmation')
    .option('--dry-run', 'only print the SQL')
    .option('--metrics-file <path>', METRICS_FILE_HELP)
    .option('--target <name>', 'the target (with several configured)')
    .action(async (role: string | undefined, options: LogoutOptions, command: Command) => {
      const { runLogout } = await import('./logout.js');
      await runLogout(role, options, globalsOf(command), io);
    });
}

export function registerPasswd(program: Command, io: Io): void {
  program
    .command('passwd')
    .description('set a new password: read from stdin or asked twice; only a SCRAM-SHA-256 verifier is sent')
    .argument('<role>', 'the role')
    .option('--valid-until <timestamp>', 'password expiry (VALID UNTIL), e.g. 2027-03-01, or infinity')
    .option('--metrics-file <path>', METRICS_FILE_HELP)
    .option('--target <name>', 'the target (with several configured)')
    .action(async (role: string, options: PasswdOptions, command: Command) => {
      const { runPasswd } = await import('./passwd.js');
      await runPasswd(role, options, globalsOf(command), io);
    });
}

export function registerAddUser(program: Command, io: Io): void {
  program
    .command('adduser')
    .description('create a LOGIN role safely: SCRAM verifier only, an expiry, memberships, CONNECT and schema grants')
    .argument('<role>', 'the new role (exact name, any characters)')
    .option('--valid-until <timestamp>', 'password expiry, e.g. 2027-03-01 (or infinity)')
    .option('--valid-for <duration>', 'password expiry from now, e.g. 90d')
    .option('--no-expiry', 'create it without an expiry (refused when a configured policy requires one: requireExpiry)')
    .option('--in-role <role>', 'make it a member of ROLE (repeatable)', collect, [])
    .option('--connect <database>', 'GRANT CONNECT on DATABASE (repeatable)', collect, [])
    .option('--schema <db.schema[:usage|create]>', 'GRANT USAGE (or USAGE, CREATE) on a schema in a database (repeatable)', collect, [])
    .option('--conn-limit <n>', 'CONNECTION LIMIT')
    .option('--update', 'the role exists: add only what it is missing, and report it')
    .option('--dry-run', 'only print the statements')
    .option('--metrics-file <path>', METRICS_FILE_HELP)
    .option('--target <name>', 'the target (with several configured)')
    .action(async (role: string, options: AddUserOptions, command: Command) => {
      const { runAddUser } = await import('./adduser.js');
      await runAddUser(role, options, globalsOf(command), io);
    });
}

export function registerAccess(program: Command, io: Io): void {
  program
    .command('access')
    .description("ROLE's effective rights through its memberships; with --table, why a right is missing")
    .argument('<role>', 'the role (exact name, any characters)')
    .option('--database <database>', 'only this database')
    .option('--schema <schema>', 'only this schema')
    .option('--table <table>', 'explain every privilege on this table, view or sequence (found in every database unless --database)')
    .option('--target <name>', 'the target (with several configured)')
    .action(async (role: string, options: AccessOptions, command: Command) => {
      const { runAccess } = await import('./access.js');
      await runAccess(role, options, globalsOf(command), io);
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
      const { runOffboard } = await import('./offboard.js');
      await runOffboard(role, options, globalsOf(command), io);
    });
}

export function registerRevoke(program: Command, io: Io): void {
  program
    .command('revoke')
    .description('revoke every privilege ROLE holds (in every database, or the one named), restore SQL first; memberships are left alone')
    .argument('<role>', 'the role whose privileges are revoked')
    .option('--database <name>', 'only in this database (and on the database itself)')
    .option('--schema <name>', 'with --database: only objects in this schema, the schema itself and its default privileges')
    .option('--dry-run', 'only print the restore SQL and the REVOKEs')
    .option('--yes', 'do not ask for confirmation')
    .option('--metrics-file <path>', METRICS_FILE_HELP)
    .option('--target <name>', 'the target (with several configured)')
    .addHelpText(
      'after',
      `
Every ACL item naming ROLE as grantee is revoked as its grantor, one REVOKE … CASCADE each: on
tables (and columns), sequences, functions and procedures, schemas, types and domains, languages,
large objects, foreign-data wrappers and servers, databases (CONNECT, CREATE, TEMPORARY),
parameters (PostgreSQL 15+), and default privileges granted to it. Grants it handed on with the
grant option cascade away with them and are in the restore SQL too.

Left alone: role memberships (GRANT group TO ROLE: see offboard, or logout --lock to shut ROLE
out), what ROLE owns (an owner's rights are not grants), and what it gets through PUBLIC or a group.

Before the first change it refuses (exit 2, nothing changed) when a database holding ACL entries
of ROLE cannot be entered, or a grant was made by a role pgwarden's role cannot act as; each
blocker comes with the statement that removes it. Exit codes: 0 done or nothing to do, 1 a REVOKE
failed, 2 refused or bad usage.`,
    )
    .action(async (role: string, options: RevokeOptions, command: Command) => {
      const { runRevoke } = await import('./revoke.js');
      await runRevoke(role, options, globalsOf(command), io);
    });
}

export function registerConfig(program: Command, io: Io): void {
  const config = program.command('config').description('configuration tools');
  config
    .command('check')
    .description('validate the configuration and print the effective one, secrets redacted')
    .action(async (_options: unknown, command: Command) => {
      const { runConfigCheck } = await import('./config-check.js');
      await runConfigCheck(globalsOf(command), io);
    });
}

export function registerDoctor(program: Command, io: Io): void {
  program
    .command('doctor')
    .description("what pgwarden's role may do on each target, what each configured policy and command needs, and the statement that grants what is missing")
    .option('--target <name>', 'only this target (with several configured)')
    .action(async (options: { target?: string }, command: Command) => {
      const { runDoctor } = await import('./doctor.js');
      await runDoctor(options, globalsOf(command), io);
    });
}

/**
 * `runCommand` is the command line itself (program.ts's runCli), handed in by the program that
 * registers this command, so that the two modules do not import each other.
 */
export function registerDemo(program: Command, io: Io, runCommand: RunCommand): void {
  program
    .command('demo')
    .description('a throwaway embedded PostgreSQL with a scene of bad sessions and roles, and the daemon at work on it (dev dependencies)')
    .option('--duration <duration>', 'stop after the daemon has enforced this long (e.g. 30s); default: until Ctrl-C')
    .action(async (flags: DemoFlags, command: Command) => {
      const { runDemoCommand } = await import('./demo.js');
      await runDemoCommand(flags, globalsOf(command), io, runCommand);
    });
}
