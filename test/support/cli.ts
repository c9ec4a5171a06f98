/** Running the command line in-process (fast) or as the real binary (exit codes, stderr). */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli/program.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
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
    env: { PATH: process.env.PATH, ...env },
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
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
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
