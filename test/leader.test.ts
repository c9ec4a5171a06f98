/** Leader election with real processes: exactly one enforces, and another takes over. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { RunOutput } from '../src/cli/run.js';
import { leaderLockKey } from '../src/leader.js';
import { cli } from './support/cli.js';
import { ROOT } from './support/deploy.js';
import { testDatabaseUrl, useFixture, waitFor } from './support/fixture.js';
import { freePort } from './support/net.js';

const fixture = useFixture('leader');
const dir = mkdtempSync(join(tmpdir(), 'pgwarden-leader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const children: ChildProcess[] = [];

afterEach(async () => {
  await Promise.all(
    children.splice(0).map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.on('exit', () => resolve());
          c.kill('SIGTERM');
        }),
    ),
  );
});

async function daemon(config: string, port: number, lockKey: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [`${ROOT}dist/main.js`, '--config', config, '--database-url', testDatabaseUrl(), '--log-level', 'warn', 'run'], {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, PGWARDEN_SERVER_PORT: String(port), PGWARDEN_LEADER_LOCK_KEY: lockKey },
  });
  children.push(child);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok, `daemon on ${port}`, 20_000);
  return { child, port };
}

async function metric(port: number, pattern: RegExp): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined))?.text();
  const m = text ? pattern.exec(text) : null;
  return m ? Number(m[1]) : undefined;
}

const leaderOf = (port: number) => metric(port, /^pgwarden_leader\{target="default"\} (\d)/m);

describe('leader election', () => {
  it('exactly one of two daemons enforces; the other takes over when it dies; run --once respects it', async () => {
    const f = fixture();
    const app = await f.createRole(f.name('app'));
    const lockKey = `${f.prefix}-lock`;
    const config = join(dir, `${f.prefix}.json`);
    writeFileSync(
      config,
      JSON.stringify({
        mode: 'enforce',
        server: { host: '127.0.0.1' },
        leader: { pollInterval: '1s' },
        policies: [{ name: 'iit', kind: 'idle_in_transaction', schedule: '* * * * * *', maxIdle: '1s', match: { roles: [app] } }],
      }),
    );
    const a = await daemon(config, await freePort(), lockKey);
    const b = await daemon(config, await freePort(), lockKey);
    const leaders = await waitFor(async () => {
      const both = [await leaderOf(a.port), await leaderOf(b.port)];
      return both.every((x) => x !== undefined) && (both[0]! + both[1]! === 1) && both;
    }, 'exactly one leader', 20_000);
    const [leader, follower] = leaders[0] === 1 ? [a, b] : [b, a];

    // The leader enforces; the follower plans the same violation and reports it skipped.
    const victim = await f.openSession({ role: app, state: 'idle in transaction' });
    await waitFor(async () => !(await f.alive(victim.pid)), 'the leader to terminate the session', 20_000);
    const done = (port: number) => metric(port, /^pgwarden_actions_total\{target="default",policy="iit",action="terminate",result="done"\} (\d+)/m);
    // The counter moves just after the kill returns: the session can be gone a moment before.
    await waitFor(async () => (await done(leader.port)) === 1, "the leader's done counter", 10_000);
    expect(await done(follower.port)).toBe(0);

    // While a daemon leads, run --once with the same key does not act either. (Its policy is
    // stricter, 1 ms, so it sees the session before the daemon's 1 s limit is reached.)
    const onceConfig = join(dir, `${f.prefix}-once.json`);
    writeFileSync(
      onceConfig,
      JSON.stringify({ mode: 'enforce', policies: [{ name: 'iit', kind: 'idle_in_transaction', maxIdle: '1ms', match: { roles: [app] } }] }),
    );
    const held = await f.openSession({ role: app, state: 'idle in transaction' });
    const once = await cli(['--database-url', testDatabaseUrl(), '--config', onceConfig, '--json', 'run', '--once'], { PGWARDEN_LEADER_LOCK_KEY: lockKey });
    const out = JSON.parse(once.stdout) as RunOutput;
    expect(out.actions.filter((x) => x.pid === held.pid)).toEqual([
      expect.objectContaining({ action: 'terminate', result: 'skipped', detail: 'another replica leads' }),
    ]);

    // The leader dies: the follower takes over (the server frees the lock with the session).
    leader.child.kill('SIGKILL');
    await waitFor(async () => (await leaderOf(follower.port)) === 1, 'the follower to take over', 30_000);
    await waitFor(async () => !(await f.alive(held.pid)), 'the new leader to enforce', 20_000);
  });

  it('a leader that loses its lock connection steps down, and the lock is taken again', async () => {
    const f = fixture();
    const lockKey = `${f.prefix}-lock`;
    const config = join(dir, `${f.prefix}.json`);
    writeFileSync(
      config,
      JSON.stringify({
        server: { host: '127.0.0.1' },
        leader: { pollInterval: '1s' },
        policies: [{ name: 'watch', kind: 'idle_session', maxIdle: '1h', mode: 'enforce', match: { roles: [`${f.prefix}_*`] } }],
      }),
    );
    const a = await daemon(config, await freePort(), lockKey);
    await waitFor(async () => (await leaderOf(a.port)) === 1, 'the daemon to lead', 20_000);
    const key = BigInt(leaderLockKey(lockKey));
    // Advisory locks on a bigint show in pg_locks as classid (high 32 bits) and objid (low 32 bits).
    const holder = async () => {
      const { rows } = await f.sql<{ pid: number }>(
        `select pid from pg_locks where locktype = 'advisory' and granted and objsubid = 1
           and classid = $1::bigint::oid and objid = $2::bigint::oid`,
        [((key >> 32n) & 0xffffffffn).toString(), (key & 0xffffffffn).toString()],
      );
      return rows[0]?.pid;
    };
    const first = await waitFor(holder, 'the lock to be held');
    await f.sql('select pg_terminate_backend($1)', [first]);
    const second = await waitFor(async () => {
      const pid = await holder();
      return pid !== undefined && pid !== first && pid;
    }, 'the lock to be taken again on a new connection', 30_000);
    expect(second).not.toBe(first);
    await waitFor(async () => (await leaderOf(a.port)) === 1, 'the daemon to lead again', 20_000);
  });
});
