/**
 * The command line (commander): global flags of DESIGN.md, and every command's definition
 * (commands.ts), whose module is loaded only when it runs. `runCli` returns the exit code instead
 * of exiting, so commands run in-process in tests.
 */
import { Command, CommanderError, Option } from 'commander';
import { redactText } from '../config/redact.js';
import { exitCodeOf } from '../errors.js';
import {
  registerAccess,
  registerAddUser,
  registerConfig,
  registerDemo,
  registerDoctor,
  registerLocks,
  registerLogout,
  registerOffboard,
  registerOwned,
  registerPasswd,
  registerRevoke,
  registerRoles,
  registerRun,
  registerSessions,
} from './commands.js';
import { worseExitCode, type Io } from './io.js';
import { VERSION } from '../version.js';

/** Builds the program with every command wired to `io`. */
export function buildProgram(io: Io): Command {
  const program = new Command('pgwarden')
    .description('pgwarden keeps a PostgreSQL cluster inside its rules: sessions, roles, locks — with metrics and an audit log')
    .version(VERSION, '-V, --version')
    .option('--config <file>', 'configuration file, YAML or JSON (env PGWARDEN_CONFIG)')
    .option('--database-url <url>', 'connection URL of the single target (env PGWARDEN_DATABASE_URL)')
    .addOption(new Option('--mode <mode>', 'dry-run plans only; enforce acts (env PGWARDEN_MODE)').choices(['dry-run', 'enforce']))
    .option('--json', 'machine output on stdout (logs stay on stderr)')
    .addOption(
      new Option('--log-level <level>', 'log level (env PGWARDEN_LOG_LEVEL)').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    )
    .showHelpAfterError('(run pgwarden --help for usage)')
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });
  registerRun(program, io);
  registerSessions(program, io);
  registerRoles(program, io);
  registerLocks(program, io);
  registerOwned(program, io);
  registerLogout(program, io);
  registerPasswd(program, io);
  registerAddUser(program, io);
  registerAccess(program, io);
  registerOffboard(program, io);
  registerRevoke(program, io);
  registerConfig(program, io);
  registerDoctor(program, io);
  registerDemo(program, io, runCli);
  // Usage errors anywhere (unknown option, bad choice, missing argument) exit 2, not commander's 1.
  const exitOverride = (cmd: Command) => {
    cmd.exitOverride();
    cmd.commands.forEach(exitOverride);
  };
  exitOverride(program);
  return program;
}

/** Runs the command line and returns the exit code (DESIGN.md: 0, 1 runtime, 2 usage/config, 3 plan found violations). */
export async function runCli(argv: readonly string[], io: Io): Promise<number> {
  let code = 0;
  const tracked: Io = {
    ...io,
    raiseExitCode: (c) => {
      code = worseExitCode(code, c);
    },
  };
  const program = buildProgram(tracked);
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version "errors" are successful exits; commander already printed its message.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    io.stderr.write(`pgwarden: ${redactText(err instanceof Error ? err.message : String(err))}\n`);
    return worseExitCode(code, exitCodeOf(err));
  }
  return code;
}
