/**
 * What a command may touch of the outside world, injected so commands run in-process in tests.
 */

/**
 * Somewhere to write text. A stream's `write` returns false once its buffer is full and emits
 * `drain` when it has room again (or `close`, `error` when it never will): the printers of long
 * listings wait for one of them (output.ts writeText).
 */
export interface TextSink {
  write(text: string): unknown;
  once?(event: 'drain' | 'close' | 'error', listener: () => void): unknown;
  off?(event: 'drain' | 'close' | 'error', listener: () => void): unknown;
  /** True once the stream is closed: nothing will drain. */
  readonly destroyed?: boolean;
}

export interface Io {
  readonly stdout: TextSink;
  readonly stderr: TextSink;
  readonly env: NodeJS.ProcessEnv;
  /** True when stdin is a terminal a person can answer (for confirmations and prompts). */
  readonly interactive: boolean;
  /** Asks a question on the terminal and reads one line; `silent` does not echo (passwords). */
  readonly ask: (question: string, options?: { silent?: boolean }) => Promise<string>;
  /** All of stdin, when it is not a terminal (a password piped in). */
  readonly readStdin: () => Promise<string>;
  /** Records an exit code for the end of the command; the most important one wins (2, then 1, then 3). */
  readonly raiseExitCode: (code: number) => void;
}

const EXIT_PRIORITY = [0, 3, 1, 2];

/** The more important of two exit codes (DESIGN.md: 2, then 1, then 3). */
export function worseExitCode(a: number, b: number): number {
  return EXIT_PRIORITY.indexOf(b) > EXIT_PRIORITY.indexOf(a) ? b : a;
}

/** The real process's streams and environment. */
export function processIo(): Io {
  return {
    raiseExitCode: (code) => {
      process.exitCode = worseExitCode(Number(process.exitCode ?? 0), code);
    },
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    interactive: Boolean(process.stdin.isTTY),
    ask: askOnTerminal,
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

/**
 * Asks on the terminal (stderr, so stdout stays the command's output) and reads one line; with
 * `silent` nothing typed is echoed — npm's own `read`, which mutes the output stream rather than
 * patching readline's internals. Imported when a question is asked: every start-up would pay for it.
 */
async function askOnTerminal(question: string, options: { silent?: boolean } = {}): Promise<string> {
  const { read } = await import('read');
  return read({ prompt: question, silent: options.silent === true, output: process.stderr, terminal: true });
}
