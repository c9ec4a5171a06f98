/** Lock chains on the real server: `pgwarden locks`, and `lock_blocker` ending the root and nothing else. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunOutput } from '../src/cli/run.js';
import type { LockGraph, LockNode } from '../src/policies/lock-graph.js';
import { quoteIdent } from '../src/db/quote.js';
import { cli } from './support/cli.js';
import { startEmbeddedServer, type EmbeddedServer } from './support/embedded.js';
import { ROLE_PASSWORD, testDatabaseUrl, urlFor, useFixture, waitFor, waitForLockWaitAge, type Fixture } from './support/fixture.js';

const fixture = useFixture('locks');
const dir = mkdtempSync(join(tmpdir(), 'pgwarden-locks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let embedded: EmbeddedServer | undefined;
afterAll(async () => {
  await embedded?.stop();
});

interface Chain {
  database: string;
  a: { pid: number; client: pg.Client };
  b: { pid: number; done: Promise<unknown> };
  c: { pid: number; done: Promise<unknown> };
  roles: { a: string; b: string; c: string };
}

async function connect(f: Fixture, role: string, database: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: urlFor(database, { name: role, password: ROLE_PASSWORD }), application_name: `${f.prefix}-app` });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** A holds a row lock idle in transaction; B waits on the row; C waits on a table lock behind both. */
async function makeChain(f: Fixture, aActive = false): Promise<Chain> {
  const roles = { a: await f.createRole(f.name('a')), b: await f.createRole(f.name('b')), c: await f.createRole(f.name('c')) };
  const database = await f.createDatabase(f.name('db'));
  const owner = new pg.Client({ connectionString: urlFor(database) });
  await owner.connect();
  await owner.query(`create table t (id int primary key, v int); insert into t values (1, 0);
    grant select, update on t to ${quoteIdent(roles.a)}, ${quoteIdent(roles.b)}, ${quoteIdent(roles.c)}`);
  await owner.end();
  const a = await connect(f, roles.a, database);
  await a.query('begin');
  await a.query('update t set v = 1 where id = 1');
  if (aActive) void a.query('select pg_sleep(60)').catch(() => undefined);
  const b = await connect(f, roles.b, database);
  const bDone = b.query('update t set v = 2 where id = 1').catch((e: unknown) => e);
  await waitFor(async () => (await f.sql(`select 1 from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`, [pid(b)])).rowCount, 'B to wait');
  const c = await connect(f, roles.c, database);
  const cDone = c.query('begin; lock table t in access exclusive mode; commit').catch((e: unknown) => e);
  await waitFor(async () => (await f.sql(`select 1 from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`, [pid(c)])).rowCount, 'C to wait');
  return { database, roles, a: { pid: pid(a), client: a }, b: { pid: pid(b), done: bDone }, c: { pid: pid(c), done: cDone } };
}

const pid = (client: pg.Client) => (client as unknown as { processID: number }).processID;
const base = () => ['--database-url', testDatabaseUrl(), '--json', '--log-level', 'error'];

function find(node: LockNode, target: number): LockNode | undefined {
  if (node.pid === target) return node;
  for (const w of node.waiters) {
    const hit = find(w, target);
    if (hit) return hit;
  }
  return undefined;
}

function policyFile(f: Fixture, policy: Record<string, unknown>, mode = 'enforce'): string {
  const path = join(dir, `${f.prefix}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify({ mode, policies: [{ name: 'blockers', kind: 'lock_blocker', maxBlocked: '1s', match: { roles: [`${f.prefix}_*`] }, ...policy }] }));
  return path;
}

describe('pgwarden locks', () => {
  it('shows A → B → C: roots first, the DAG, counts and wait times', async () => {
    const f = fixture();
    const chain = await makeChain(f);
    const result = await cli([...base(), 'locks']);
    expect(result.code).toBe(0);
    const graph = JSON.parse(result.stdout) as LockGraph & { roots: (LockNode & { blocks: number; blocksTotal: number })[] };
    const root = graph.roots.find((r) => r.pid === chain.a.pid)!;
    expect(root).toMatchObject({ role: chain.roles.a, state: 'idle in transaction', blocks: 2, blocksTotal: 2, blockedBy: [] });
    const b = find(root, chain.b.pid)!;
    expect(b).toMatchObject({ role: chain.roles.b, blockedBy: [chain.a.pid] });
    expect(b.waitSeconds).toBeGreaterThan(0);
    expect(find(b, chain.c.pid)?.blockedBy.sort()).toEqual([chain.a.pid, chain.b.pid].sort());
    // C also hangs directly under A: a DAG, not a tree
    expect(root.waiters.map((w) => w.pid).sort()).toEqual([chain.b.pid, chain.c.pid].sort());
    expect(graph.roots.some((r) => r.pid === chain.b.pid || r.pid === chain.c.pid)).toBe(false);

    const tree = await cli(['--database-url', testDatabaseUrl(), 'locks']);
    expect(tree.stdout).toMatch(new RegExp(`ROOT pid ${chain.a.pid} `));
    expect(tree.stdout).toMatch(new RegExp(`\\n  └─ pid ${chain.b.pid} `));
    expect(tree.stdout).toMatch(/blocks 2 directly, 2 in all/);
  });
});

describe('lock_blocker', () => {
  it('in dry-run names the root only; in enforce ends the root only, and the waiters complete', async () => {
    const f = fixture();
    const chain = await makeChain(f);
    await f.waitForLockWait([chain.b.pid, chain.c.pid], 1);
    const dry = JSON.parse((await cli([...base(), '--config', policyFile(f, {}, 'dry-run'), 'plan'])).stdout) as RunOutput;
    expect(dry.violations.map((v) => v.pid)).toEqual([chain.a.pid]);
    expect(dry.violations[0]?.reason).toMatch(/blocks 2 session\(s\) directly and 2 in all/);
    expect(await f.alive(chain.a.pid)).toBe(true);

    const run = JSON.parse((await cli([...base(), '--config', policyFile(f, {}), 'run', '--once'])).stdout) as RunOutput;
    expect(run.actions.map((a) => [a.pid, a.action, a.result])).toEqual([[chain.a.pid, 'terminate', 'done']]);
    await waitFor(async () => !(await f.alive(chain.a.pid)), 'A to end');
    expect(await chain.b.done).not.toBeInstanceOf(Error);
    expect(await chain.c.done).not.toBeInstanceOf(Error);
    expect(await f.alive(chain.b.pid)).toBe(true);
    expect(await f.alive(chain.c.pid)).toBe(true);
  });

  it('leaves an active root alone unless `active` is listed', async () => {
    const f = fixture();
    const chain = await makeChain(f, true);
    await f.waitForLockWait([chain.b.pid, chain.c.pid], 1);
    const skipped = JSON.parse((await cli([...base(), '--config', policyFile(f, {}), 'run', '--once'])).stdout) as RunOutput;
    expect(skipped.violations).toEqual([]);
    expect(await f.alive(chain.a.pid)).toBe(true);
    const listed = JSON.parse((await cli([...base(), '--config', policyFile(f, { states: ['active'] }), 'run', '--once'])).stdout) as RunOutput;
    expect(listed.actions.map((a) => [a.pid, a.result])).toEqual([[chain.a.pid, 'done']]);
    await waitFor(async () => !(await f.alive(chain.a.pid)), 'A to end');
  });

  it('a root that commits between the snapshot and the kill is gone, not killed', async () => {
    const f = fixture();
    const chain = await makeChain(f);
    await f.waitForLockWait([chain.b.pid, chain.c.pid], 1);
    const { Engine } = await import('../src/engine.js');
    const { Metrics } = await import('../src/metrics/registry.js');
    const { loadConfig } = await import('../src/config/load.js');
    const { testTarget } = await import('./support/target.js');
    const { pino } = await import('pino');
    const config = loadConfig({ configFile: policyFile(f, {}) }, {});
    const db = testTarget();
    try {
      const engine = new Engine({ config, targets: [db], metrics: new Metrics(), logger: pino({ level: 'silent' }) });
      engine.setLeader('default', true);
      const snapshots = engine.freshSnapshots(db);
      await snapshots.locks(); // the snapshot and the lock graph are taken now…
      await chain.a.client.query('commit'); // …then A commits: it blocks nobody any more
      await chain.b.done;
      const report = await engine.runPolicy(db, config.policies[0]!, snapshots, 'enforce');
      expect(report.actions.map((a) => [a.pid, a.result])).toEqual([[chain.a.pid, 'gone']]);
      expect(await f.alive(chain.a.pid)).toBe(true);
    } finally {
      await db.end();
    }
  });

  it('onlyWhenBlocking: an idle transaction that blocks nobody is spared, the blocking one is ended', async () => {
    const f = fixture();
    const chain = await makeChain(f);
    const loner = await f.openSession({ role: chain.roles.c, state: 'idle in transaction' });
    await f.waitForAge([chain.a.pid, loner.pid], 1);
    const path = join(dir, `${f.prefix}-owb.json`);
    writeFileSync(path, JSON.stringify({ mode: 'enforce', policies: [{ name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s', onlyWhenBlocking: true, match: { roles: [`${f.prefix}_*`] } }] }));
    const out = JSON.parse((await cli([...base(), '--config', path, 'run', '--once'])).stdout) as RunOutput;
    expect(out.actions.map((a) => [a.pid, a.result])).toEqual([[chain.a.pid, 'done']]);
    expect(await f.alive(loner.pid)).toBe(true);
  });
});

/** A server that allows prepared transactions: the test server, or a throwaway one when it does not. */
async function preparedServerUrl(): Promise<string> {
  const probe = new pg.Client(testDatabaseUrl());
  await probe.connect();
  const { rows } = await probe.query<{ max_prepared_transactions: string }>('show max_prepared_transactions');
  await probe.end();
  if (Number(rows[0]?.max_prepared_transactions) > 0) return testDatabaseUrl();
  embedded ??= await startEmbeddedServer({ package: 'pg17' });
  return embedded.url;
}

function databaseUrl(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

describe('prepared transactions', () => {
  it('show as a root that cannot be killed, with the gid', async () => {
    const url = await preparedServerUrl();
    const gid = `pgwarden-test-${Math.random().toString(36).slice(2)}`;
    const setup = new pg.Client(url);
    await setup.connect();
    const table = `prep_${Math.random().toString(36).slice(2, 8)}`;
    await setup.query(`create table ${table} (id int)`);
    await setup.query(`begin; lock table ${table} in access exclusive mode; prepare transaction '${gid}'`);
    const waiter = new pg.Client(url);
    await waiter.connect();
    const waiting = waiter.query(`select * from ${table}`).catch((e: unknown) => e);
    try {
      await waitFor(async () => (await setup.query(`select 1 from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`, [pid(waiter)])).rowCount, 'the waiter to wait');
      const result = await cli(['--database-url', url, '--json', 'locks']);
      const graph = JSON.parse(result.stdout) as { roots: { pid: number; prepared?: { gid: string }[]; waiters: { pid: number }[] }[] };
      const root = graph.roots.find((r) => r.pid === 0)!;
      expect(root.prepared?.map((p) => p.gid)).toContain(gid);
      expect(root.waiters.map((w) => w.pid)).toContain(pid(waiter));
      const tree = await cli(['--database-url', url, 'locks']);
      expect(tree.stdout).toMatch(/ROOT prepared transaction — cannot be killed/);
      expect(tree.stdout).toContain(gid);
    } finally {
      await setup.query(`rollback prepared '${gid}'`);
      await waiting;
      await waiter.end();
      await setup.query(`drop table ${table}`);
      await setup.end();
    }
  });

  it('a pile-up behind an orphaned one is a lock_blocker violation (condition prepared, no action), with its database, and no wait longer than its transaction', async () => {
    const url = await preparedServerUrl();
    const suffix = Math.random().toString(36).slice(2, 8);
    const gid = `pgwarden-orphan-${suffix}`;
    const other = `pgwarden-other-${suffix}`;
    const database = `prep_db_${suffix}`;
    const admin = new pg.Client(url);
    await admin.connect();
    await admin.query(`create database ${quoteIdent(database)}`);
    const setup = new pg.Client(databaseUrl(url, database));
    await setup.connect();
    await setup.query('create table t (id int primary key, v int); insert into t values (1, 0); create table quiet (id int)');
    // The orphan holds the row; another prepared transaction, on another table, blocks nobody.
    await setup.query(`begin; update t set v = 1 where id = 1; prepare transaction '${gid}'`);
    await setup.query(`begin; lock table quiet in share mode; prepare transaction '${other}'`);
    const waiters = await Promise.all([0, 1].map(async () => {
      const c = new pg.Client(databaseUrl(url, database));
      c.on('error', () => undefined);
      await c.connect();
      return c;
    }));
    const done = waiters.map((c) => c.query('update t set v = v + 1 where id = 1').catch((e: unknown) => e));
    try {
      await waitFor(async () => (await admin.query(`select 1 from pg_stat_activity where pid = any($1) and wait_event_type = 'Lock'`, [waiters.map(pid)])).rowCount === 2, 'both waiters to wait');
      await waitForLockWaitAge(admin, waiters.map(pid), 1);

      const locks = await cli(['--database-url', url, '--json', 'locks']);
      const graph = JSON.parse(locks.stdout) as LockGraph;
      const root = graph.roots.find((r) => r.pid === 0)!;
      expect(root.database).toBe(database);
      expect(root.prepared?.map((p) => p.gid)).toEqual([gid]);
      expect(root.blocksTotal).toBe(2);
      const walk = (n: LockNode): LockNode[] => [n, ...n.waiters.flatMap(walk)];
      for (const w of root.waiters.flatMap(walk)) {
        expect(w.waitSeconds).not.toBeNull();
        expect(w.waitSeconds as number).toBeLessThanOrEqual(w.xactSeconds as number);
      }

      const path = join(dir, `prepared-${suffix}.json`);
      writeFileSync(path, JSON.stringify({ mode: 'enforce', policies: [{ name: 'lb', kind: 'lock_blocker', maxBlocked: '1s', match: { databases: [database] } }] }));
      const plan = await cli(['--database-url', url, '--config', path, '--json', 'plan', '--exit-code']);
      const out = JSON.parse(plan.stdout) as RunOutput;
      expect(out.violations).toHaveLength(1);
      expect(out.violations[0]).toMatchObject({ policy: 'lb', kind: 'lock_blocker', condition: 'prepared', database });
      expect(out.violations[0]?.pid).toBeUndefined();
      expect(out.violations[0]?.reason).toContain(`'${gid}'`);
      expect(out.violations[0]?.reason).not.toContain(other);
      expect(out.violations[0]?.reason).toMatch(/ROLLBACK PREPARED/);
      expect(out.actions).toEqual([]);
      expect(plan.code).toBe(3);
      // Said, once, on stderr beside the output.
      expect(out.warnings?.join('\n')).toContain(gid);

      // Enforcing changes nothing: no signal can end it, and nothing is killed.
      const run = await cli(['--database-url', url, '--config', path, '--json', '--log-level', 'error', 'run', '--once']);
      expect((JSON.parse(run.stdout) as RunOutput).actions).toEqual([]);
      expect(run.code).toBe(0);
      const { rows } = await admin.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where pid = any($1)`, [waiters.map(pid)]);
      expect(rows[0]?.n).toBe(2);
    } finally {
      await setup.query(`rollback prepared '${gid}'`).catch(() => undefined);
      await setup.query(`rollback prepared '${other}'`).catch(() => undefined);
      await Promise.all(done);
      await Promise.all(waiters.map((c) => c.end()));
      await setup.end();
      await admin.query(`drop database ${quoteIdent(database)} with (force)`);
      await admin.end();
    }
  });
});
