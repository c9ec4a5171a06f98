/** Running the command line in-process (fast) or as the real binary (exit codes, stderr). */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli/program.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Tests run in parallel against one server: each invocation gets its own leader lock key unless
 * the test sets one, so concurrent tests never see "another replica leads".
 */
export function isolatedEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { PGWARDEN_LEADER_LOCK_KEY: `pgwarden-test-${randomBytes(6).toString('hex')}`, ...env };
}

/** In-process: the same code path as the binary, with captured streams. */
export async function cli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  terminal: { stdin?: string; answers?: string[] } = {},
): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const answers = [...(terminal.answers ?? [])];
  const code = await runCli(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: { PATH: process.env.PATH, ...isolatedEnv(env) },
    interactive: terminal.answers !== undefined,
    ask: (question: string) => {
      stderr += question;
      return Promise.resolve(answers.shift() ?? '');
    },
    readStdin: () => Promise.resolve(terminal.stdin ?? ''),
    raiseExitCode: () => undefined,
  });
  return { code, stdout, stderr };
}

const BIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** The built binary in a child process (npm test builds dist/ first). */
export function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, stdin?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...isolatedEnv(env) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}
