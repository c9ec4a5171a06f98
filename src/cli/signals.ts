/**
 * SIGINT/SIGTERM for the long-running commands (`run`, `demo`): the first starts a graceful stop,
 * a second one forces an exit with 1 (DESIGN.md). A signal within a second of the first is the same
 * interrupt delivered twice, not a second one: npm forwards a terminal's Ctrl-C to the script that
 * received it too, so under `npm start` or `npm run demo` one keypress arrives as two signals.
 */
import type { Io } from './io.js';

/** How soon after the first a signal still counts as the same interrupt. */
export const SECOND_SIGNAL_AFTER_MS = 1000;

export interface Interrupt {
  /** Resolves with the first signal's name. */
  readonly interrupted: Promise<string>;
  /** Stops listening (the default handlers come back). */
  release(): void;
}

export interface InterruptOptions {
  /** Said on stderr before a forced exit, after "second SIGINT: exiting now". */
  readonly forcedNote?: string;
  /** Injected in tests. */
  readonly exit?: (code: number) => void;
  readonly now?: () => number;
}

export function listenForInterrupt(io: Io, options: InterruptOptions = {}): Interrupt {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const now = options.now ?? Date.now;
  let firstAt: number | undefined;
  let resolve: (signal: string) => void = () => undefined;
  const interrupted = new Promise<string>((r) => (resolve = r));
  const onSignal = (signal: string) => {
    if (firstAt === undefined) {
      firstAt = now();
      resolve(signal);
      return;
    }
    if (now() - firstAt < SECOND_SIGNAL_AFTER_MS) return;
    io.stderr.write(`pgwarden: second ${signal}: exiting now${options.forcedNote ? ` (${options.forcedNote})` : ''}\n`);
    exit(1);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    interrupted,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
