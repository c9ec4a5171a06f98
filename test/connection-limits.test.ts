/**
 * `connection_pressure` and `connection_quota` (issue 18), with real sessions: a throwaway
 * server with max_connections = 40 filled with idle and active sessions, per-role quotas on the
 * shared server, the in-statement re-check (a session that turns active, or sessions that close
 * on their own, between snapshot and kill), and pgbench running beside a daemon that must not act.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunOutput } from '../src/cli/run.js';
import type { ConnectionSummaryJson } from '../src/cli/sessions.js';
import { executeSessionActions } from '../src/actions/executor.js';
import { planSessionActions, protectionOf } from '../src/actions/planner.js';
import { loadConfig } from '../src/config/load.js';
import { TargetDb } from '../src/db/pool.js';
import { fetchSessions } from '../src/db/snapshot.js';
import type { ConnectionPressurePolicy } from '../src/policies/connection-pressure.js';
import { connectionPressure } from '../src/policies/connection-pressure.js';
import { cli } from './support/cli.js';
import { useConfigFiles } from './support/config-file.js';
import { startTestDaemon } from './support/daemon.js';
import { startEmbeddedServer, type EmbeddedServer } from './support/embedded.js';
import { createCloudAdmin } from './support/roles.js';
import { testDatabaseUrl, urlFor, useFixture, waitFor, waitForSessionAge, type Fixture } from './support/fixture.js';

const run = promisify(execFile);
const fixture = useFixture('connlimits');
const writeConfig = useConfigFiles('connlimits');

/** The throwaway server's major: the matrix's when it runs one, else 17. */
function embeddedPackage(): 'pg14' | 'pg16' | 'pg17' | 'pg18' {
  const major = process.env.PGWARDEN_TEST_EXPECT_MAJOR;
  return major === '14' || major === '16' || major === '18' ? `pg${major}` : 'pg17';
}

describe('connection_pressure on a server with max_connections = 40', () => {
  let server: EmbeddedServer;
  const clients: pg.Client[] = [];

  beforeAll(async () => {
    server = await startEmbeddedServer({ package: embeddedPackage(), maxConnections: 40 });
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query(`create role app login password 'app-pw'`);
    await admin.end();
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.end()));
    await server?.stop();
  });

  const appUrl = () => {
    const url = new URL(server.url);
    url.username = 'app';
    url.password = 'app-pw';
    return url.toString();
  };

  async function open(application: string, count: number): Promise<pg.Client[]> {
    const opened: pg.Client[] = [];
    for (let i = 0; i < count; i++) {
      const client = new pg.Client({ connectionString: appUrl(), application_name: application });
      client.on('error', () => undefined);
      await client.connect();
      // A little apart: the first are idle longest.
      await client.query('select 1');
      opened.push(client);
      clients.push(client);
    }
    return opened;
  }

  const pidOf = (c: pg.Client) => (c as unknown as { processID: number }).processID;

  async function clientBackends(): Promise<{ pid: number; state: string | null; application: string }[]> {
    const admin = new pg.Client({ connectionString: server.url, application_name: 'test-admin' });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ pid: number; state: string | null; application: string }>(
        "select pid, state, application_name as application from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()",
      );
      return rows;
    } finally {
      await admin.end();
    }
  }

  it('the server full (a login refused): ends exactly the longest idle ones needed to get back to target, never an active one; then a login succeeds', async () => {
    const active = await open('batch', 3);
    const running = active.map((c) => c.query('select pg_sleep(120)').catch(() => undefined));
    // An application opens idle sessions until the server refuses it: every usable slot taken.
    const idle: pg.Client[] = [];
    let refused: { code?: string } | undefined;
    while (!refused && idle.length < 40) {
      try {
        idle.push(...(await open('leaky-app', 1)));
      } catch (err) {
        refused = err as { code?: string };
      }
    }
    expect(refused?.code).toBe('53300'); // too_many_connections: "sorry, too many clients already"
    expect(idle.length).toBe(34);
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    try {
      await waitForSessionAge(admin, idle.map(pidOf), 1);
    } finally {
      await admin.end();
    }
    // 37 sessions in the 37 usable slots (40 - 3 superuser_reserved_connections); pgwarden, a superuser, in a reserved one.
    const summary = await cli(['--database-url', server.url, '--json', 'sessions', '--summary']);
    const [slots] = JSON.parse(summary.stdout) as ConnectionSummaryJson[];
    expect(slots).toMatchObject({ usable: 37, maxConnections: 40, superuserReserved: 3 });
    expect(slots?.top[0]).toMatchObject({ role: 'app', application: 'leaky-app', idle: 34, idleInTransaction: 0, total: 34 });

    const file = writeConfig({
      mode: 'enforce',
      policies: [{ name: 'pressure', kind: 'connection_pressure', above: '85%', target: '60%', minIdle: '1s', states: ['idle'] }],
    });
    const result = await cli(['--config', file, '--database-url', server.url, '--json', 'run', '--once']);
    const out = JSON.parse(result.stdout) as RunOutput;
    expect(result.code).toBe(0);
    const ended = out.actions.filter((a) => a.result === 'done').map((a) => a.pid);
    // used (37 + pgwarden's own) - floor(60% of 37) = used - 22 planned, the longest idle first.
    const used = Number(/^(\d+) of 37 usable/.exec(out.violations[0]?.reason ?? '')?.[1]);
    expect(used).toBeGreaterThanOrEqual(38);
    expect(out.actions.map((a) => a.pid)).toEqual(idle.slice(0, used - 22).map(pidOf));
    // Each ended, unless the server was back at target at the re-check (one of pgwarden's own
    // connections gone meanwhile): then the youngest of them is spared, never an extra one ended.
    expect(ended).toEqual(idle.slice(0, ended.length).map(pidOf));
    expect(ended.length).toBeGreaterThanOrEqual(used - 22 - 1);
    for (const spared of out.actions.filter((a) => a.result !== 'done')) {
      expect(spared.result).toBe('gone');
      expect(spared.detail).toMatch(/no longer needed/);
    }
    await waitFor(async () => (await clientBackends()).filter((b) => ended.includes(b.pid)).length === 0, 'the ended sessions to be gone');
    const left = await clientBackends();
    expect(left.filter((b) => b.application === 'batch')).toHaveLength(3);
    expect(left.length).toBeLessThanOrEqual(22);
    // A new login succeeds (it would have been the 38th).
    const late = new pg.Client({ connectionString: appUrl() });
    await late.connect();
    await late.end();
    void running;
  });

  it('a session that turns active between snapshot and kill is gone, not killed; sessions closing on their own spare as many', async () => {
    // Whatever is left from the test before, topped up with idle ones to 35 of 37: over 85 % again.
    const fresh = await open('second-wave', 35 - (await clientBackends()).length);
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    try {
      await waitForSessionAge(admin, fresh.map(pidOf), 1);
    } finally {
      await admin.end();
    }
    const config = loadConfig({ databaseUrl: server.url }, {});
    // One connection: the snapshot, the watching and the kill all on it, so pgwarden's own count stays put.
    const db = new TargetDb(config.targets[0]!, { connectTimeoutMs: 5000, statementTimeoutMs: 30_000, poolSize: 1 }, pino({ level: 'silent' }));
    try {
      const snapshot = await fetchSessions(db);
      const policy: ConnectionPressurePolicy = {
        name: 'pressure',
        kind: 'connection_pressure',
        schedule: '* * * * *',
        mode: 'enforce',
        match: { roles: [], databases: [], applications: [], exclude: { roles: [], databases: [], applications: [] } },
        maxActionsPerRun: 50,
        targets: undefined,
        above: { percent: 85 },
        target: { percent: 60 },
        minIdleSeconds: 1,
        states: ['idle'],
        action: 'terminate',
      };
      const exempt = { superusers: true, roles: [], applications: [] };
      const violations = connectionPressure(snapshot, policy, { candidate: (s) => protectionOf(s, exempt, db.ownPids, snapshot.self) === null });
      expect(violations.length).toBeGreaterThanOrEqual(4);
      const plan = planSessionActions({
        violations,
        maxActionsPerRun: 50,
        clientSessions: 40,
        exempt,
        safety: { maxFraction: 0.9, minActions: 5 },
        ownPids: db.ownPids,
        self: snapshot.self,
        acting: { mode: 'enforce', leads: true },
      });
      const planned = plan.actions.map((a) => a.violation.session.pid);
      const [turnsActive, ...rest] = planned;
      const byPid = new Map(clients.map((c) => [pidOf(c), c]));
      // Between the snapshot and the kill: one planned session starts a query, and two sessions
      // the plan did not pick (the youngest) disconnect: two slots freed, so two fewer are needed.
      const leaving = fresh.map(pidOf).filter((pid) => !planned.includes(pid)).slice(-2);
      expect(leaving).toHaveLength(2);
      const busy = byPid.get(turnsActive!)!.query('select pg_sleep(3)').catch(() => undefined);
      for (const pid of leaving) await byPid.get(pid)!.end();
      // Watched through pgwarden's own pooled connection: no extra backend at the kill.
      const stateOf = async (pid: number) => (await db.query<{ state: string | null }>('select state from pg_stat_activity where pid = $1', [pid])).rows[0]?.state;
      await waitFor(async () => (await stateOf(turnsActive!)) === 'active', 'the session to be active');
      await waitFor(async () => (await stateOf(leaving[0]!)) === undefined && (await stateOf(leaving[1]!)) === undefined, 'the two to be gone');
      const outcome = await executeSessionActions(db, plan.actions);
      const result = new Map(outcome.map((a) => [a.violation.session.pid, a]));
      expect(result.get(turnsActive!)?.result).toBe('gone');
      expect(result.get(turnsActive!)?.detail).toMatch(/no longer matched/);
      // Of the others, all but the youngest are ended; it is no longer needed.
      expect(rest.filter((pid) => result.get(pid)?.result === 'done')).toEqual(rest.slice(0, -1));
      expect(result.get(rest[rest.length - 1]!)?.result).toBe('gone');
      expect(result.get(rest[rest.length - 1]!)?.detail).toMatch(/no longer needed/);
      await busy;
    } finally {
      await db.end();
    }
  });

  it('as the cloud-admin role (pg_signal_backend, pg_read_all_stats; it takes an ordinary slot itself): the same, and --summary sees every session', async () => {
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query(`create role warden login password 'warden-pw'`);
    await admin.query('grant pg_signal_backend, pg_read_all_stats to warden');
    await admin.end();
    const wardenUrl = (() => {
      const url = new URL(server.url);
      url.username = 'warden';
      url.password = 'warden-pw';
      return url.toString();
    })();
    // Topped up to 34 of 37, leaving room for pgwarden's own two connections (pool, leader lock).
    const fresh = await open('third-wave', 34 - (await clientBackends()).length);
    const watcher = new pg.Client({ connectionString: server.url });
    await watcher.connect();
    let longestIdleFirst: number[];
    try {
      await waitForSessionAge(watcher, fresh.map(pidOf), 1);
      const { rows } = await watcher.query<{ pid: number }>(
        "select pid from pg_stat_activity where backend_type = 'client backend' and state = 'idle' and pid <> pg_backend_pid() order by state_change, pid",
      );
      longestIdleFirst = rows.map((r) => r.pid);
    } finally {
      await watcher.end();
    }
    const summary = await cli(['--database-url', wardenUrl, '--json', 'sessions', '--summary']);
    expect(summary.code).toBe(0);
    expect(summary.stderr).not.toMatch(/hidden/);
    const [slots] = JSON.parse(summary.stdout) as ConnectionSummaryJson[];
    expect(slots?.byState.hidden).toBeUndefined();
    const file = writeConfig({
      mode: 'enforce',
      policies: [{ name: 'pressure', kind: 'connection_pressure', above: '85%', target: '60%', minIdle: '1s' }],
    });
    const result = await cli(['--config', file, '--database-url', wardenUrl, '--json', 'run', '--once']);
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout) as RunOutput;
    const used = Number(/^(\d+) of 37 usable/.exec(out.violations[0]?.reason ?? '')?.[1]);
    expect(used).toBeGreaterThanOrEqual(35);
    const done = out.actions.filter((a) => a.result === 'done').map((a) => a.pid);
    expect(done.length).toBeGreaterThanOrEqual(used - 22 - 1);
    // Only idle sessions, the longest idle first; never an active one (the batch ones still run).
    const left = await clientBackends();
    expect(left.filter((b) => b.application === 'batch' && b.state === 'active')).toHaveLength(3);
    expect(done).toEqual(longestIdleFirst.slice(0, done.length));
  });
});

describe('connection_quota on the shared server', () => {
  it('12 idle sessions of one role over a quota of 5: its 7 longest idle are ended; a role with 3 is untouched', async () => {
    const f: Fixture = fixture();
    const [busy, calm] = [await f.createRole(f.name('busy')), await f.createRole(f.name('calm'))];
    const many: Awaited<ReturnType<Fixture['openSession']>>[] = [];
    for (let i = 0; i < 12; i++) many.push(await f.openSession({ role: busy, state: 'idle' }));
    const few: Awaited<ReturnType<Fixture['openSession']>>[] = [];
    for (let i = 0; i < 3; i++) few.push(await f.openSession({ role: calm, state: 'idle' }));
    await f.waitForAge([...many, ...few].map((s) => s.pid), 1);
    const file = writeConfig({
      mode: 'enforce',
      policies: [{ name: 'quota', kind: 'connection_quota', per: 'role', max: 5, minIdle: '1s', match: { roles: [`${f.prefix}_*`] } }],
    });
    const result = await cli(['--config', file, '--database-url', testDatabaseUrl(), '--json', 'run', '--once']);
    const out = JSON.parse(result.stdout) as RunOutput;
    expect(result.code).toBe(0);
    expect(out.violations.map((v) => [v.role, v.condition])).toEqual(Array.from({ length: 7 }, () => [busy, 'quota']));
    expect(out.violations[0]?.reason).toMatch(new RegExp(`^role "${busy}" has 12 client sessions, over its quota of 5: idle for \\d+s, among its 7 longest idle$`));
    expect(out.actions.map((a) => a.result)).toEqual(Array(7).fill('done'));
    expect(new Set(out.actions.map((a) => a.pid))).toEqual(new Set(many.slice(0, 7).map((s) => s.pid)));
    await waitFor(async () => {
      for (const s of many.slice(0, 7)) if (await f.alive(s.pid)) return false;
      return true;
    }, 'the 7 to end');
    for (const s of [...many.slice(7), ...few]) expect(await f.alive(s.pid)).toBe(true);
    // Now at the quota: nothing more to do.
    const again = await cli(['--config', file, '--database-url', testDatabaseUrl(), '--json', 'run', '--once']);
    expect((JSON.parse(again.stdout) as RunOutput).actions).toEqual([]);
  });

  it.each([
    ['application', 6, 4],
    ['database', 5, 3],
    ['role_database', 5, 2],
  ] as const)('per %s: the group is counted again in the killing statement and trimmed to the quota', async (per, open, max) => {
    const f: Fixture = fixture();
    const role = await f.createRole(f.name('g'));
    const database = await f.createDatabase(f.name('gdb'));
    const application = `${f.prefix}-app`;
    const sessions: Awaited<ReturnType<Fixture['openSession']>>[] = [];
    for (let i = 0; i < open; i++) sessions.push(await f.openSession({ role, database, application, state: 'idle' }));
    await f.waitForAge(sessions.map((s) => s.pid), 1);
    const file = writeConfig({
      mode: 'enforce',
      policies: [{ name: 'quota', kind: 'connection_quota', per, max, minIdle: '1s', match: { roles: [role] } }],
    });
    const result = await cli(['--config', file, '--database-url', testDatabaseUrl(), '--json', 'run', '--once']);
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout) as RunOutput;
    expect(out.actions.map((a) => [a.pid, a.result])).toEqual(sessions.slice(0, open - max).map((s) => [s.pid, 'done']));
    for (const s of sessions.slice(open - max)) expect(await f.alive(s.pid)).toBe(true);
  });

  it('as the cloud-admin role (pg_signal_backend, pg_read_all_stats) too', async () => {
    const f: Fixture = fixture();
    const admin = await createCloudAdmin(f);
    const role = await f.createRole(f.name('leaky'));
    const sessions: Awaited<ReturnType<Fixture['openSession']>>[] = [];
    for (let i = 0; i < 6; i++) sessions.push(await f.openSession({ role, state: 'idle' }));
    await f.waitForAge(sessions.map((s) => s.pid), 1);
    const file = writeConfig({
      mode: 'enforce',
      policies: [{ name: 'quota', kind: 'connection_quota', per: 'role', max: 3, minIdle: '1s', match: { roles: [`${f.prefix}_*`] } }],
    });
    const result = await cli(['--config', file, '--database-url', admin.url(), '--json', 'run', '--once']);
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout) as RunOutput;
    expect(out.actions.map((a) => [a.pid, a.result])).toEqual(sessions.slice(0, 3).map((s) => [s.pid, 'done']));
  });

  it('never an active session, never one idle for less than minIdle, and exemptions hold', async () => {
    const f: Fixture = fixture();
    const role = await f.createRole(f.name('mixed'));
    const active: Awaited<ReturnType<Fixture['openSession']>>[] = [];
    for (let i = 0; i < 4; i++) active.push(await f.openSession({ role, state: 'active' }));
    const exempt = await f.openSession({ role, state: 'idle', application: 'pg_dump' });
    const young = await f.openSession({ role, state: 'idle' });
    const file = writeConfig({
      mode: 'enforce',
      exempt: { applications: ['pg_dump'] },
      policies: [{ name: 'quota', kind: 'connection_quota', per: 'role', max: 2, minIdle: '1h', match: { roles: [`${f.prefix}_*`] } }],
    });
    const result = await cli(['--config', file, '--database-url', testDatabaseUrl(), '--json', 'run', '--once']);
    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as RunOutput).actions).toEqual([]);
    for (const s of [...active, exempt, young]) expect(await f.alive(s.pid)).toBe(true);
  });
});

describe('beside pgbench', () => {
  it('a daemon with both policies on a server below `above` takes no action, and pgbench fails no transaction', async () => {
    const f: Fixture = fixture();
    const database = await f.createDatabase(f.name('bench'));
    const url = urlFor(database);
    const pgbench = (args: string[]) => run('pgbench', [...args, url], { maxBuffer: 1 << 24 });
    await pgbench(['-i', '-s', '1', '-q']);
    const file = writeConfig({
      mode: 'enforce',
      policies: [
        { name: 'pressure', kind: 'connection_pressure', schedule: '* * * * * *', above: '95%', target: '90%', minIdle: '1s' },
        { name: 'quota', kind: 'connection_quota', schedule: '* * * * * *', per: 'database', max: 20, minIdle: '1s', match: { databases: [database] } },
      ],
    });
    const daemon = await startTestDaemon(file, testDatabaseUrl());
    try {
      const { stdout } = await pgbench(['-c', '8', '-j', '2', '-T', '6', '-n']);
      const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? '0');
      const processed = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
      expect(processed).toBeGreaterThan(100);
      expect(failed).toBe(0);
      const metrics = await daemon.metrics();
      for (const policy of ['pressure', 'quota']) {
        const runs = new RegExp(`^pgwarden_policy_run_duration_seconds_count\\{target="default",policy="${policy}"\\} (\\d+)$`, 'm').exec(metrics)?.[1];
        expect(Number(runs)).toBeGreaterThanOrEqual(3);
        const acted = [...metrics.matchAll(new RegExp(`^pgwarden_actions_total\\{[^}]*policy="${policy}"[^}]*\\} (\\S+)$`, 'gm'))].map((m) => Number(m[1]));
        expect(acted.every((n) => n === 0)).toBe(true);
      }
      const { rows } = await f.sql<{ usable: number }>(
        "select current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int - coalesce(current_setting('reserved_connections', true)::int, 0) as usable",
      );
      const usable = rows[0]?.usable ?? 0;
      expect(metrics).toMatch(new RegExp(`^pgwarden_connections_usable\\{target="default"\\} ${usable}$`, 'm'));
      // The policy's own bounds in client backends: 95 % and 90 % of the usable slots, rounded down.
      expect(metrics).toMatch(new RegExp(`^pgwarden_connection_limit\\{target="default",policy="pressure",bound="above"\\} ${Math.floor((95 * usable) / 100)}$`, 'm'));
      expect(metrics).toMatch(new RegExp(`^pgwarden_connection_limit\\{target="default",policy="pressure",bound="target"\\} ${Math.floor((90 * usable) / 100)}$`, 'm'));
      expect(Number(/^pgwarden_connections\{target="default"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    } finally {
      await daemon.stop();
      await f.sql(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1`, [database]);
    }
  }, 60_000);
});
