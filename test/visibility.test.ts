/**
 * What pgwarden cannot see (issue 14, cases 1 and 5): a role without pg_read_all_stats does not
 * see other roles' backends' state. It must count them, say so everywhere, never take them for
 * "no session", and report a lockout it cannot finish as failed; and a snapshot that fails, of
 * any kind, makes the target down.
 */
import { describe, expect, it } from 'vitest';
import type { RunOutput } from '../src/cli/run.js';
import { quoteIdent } from '../src/db/quote.js';
import { cli } from './support/cli.js';
import { useConfigFiles } from './support/config-file.js';
import { startTestDaemon } from './support/daemon.js';
import { testDatabaseUrl, useFixture, waitFor, type Fixture } from './support/fixture.js';
import { canLogIn, createBareRole, grantAdminOn, serverVersionNum, type TestLogin } from './support/roles.js';

const fixture = useFixture('visibility');
const writeConfig = useConfigFiles('visibility');

/** `w`: LOGIN, pg_signal_backend and CREATEROLE (ADMIN on `x` on 16+), but not pg_read_all_stats. */
async function blindWarden(f: Fixture, manages: readonly string[]): Promise<TestLogin> {
  const w = await createBareRole(f, 'w');
  await f.sql(`grant pg_signal_backend to ${quoteIdent(w.role)}`);
  await f.sql(`alter role ${quoteIdent(w.role)} createrole`);
  if ((await serverVersionNum(f)) >= 160000) await grantAdminOn(f, w, manages);
  return w;
}

/** `x` idle in a transaction on a table, `y` waiting on its lock. */
async function pileUp(f: Fixture) {
  const x = await f.createRole(f.name('x'));
  const y = await f.createRole(f.name('y'));
  const table = f.name('t');
  await f.sql(`create table ${quoteIdent(table)} (id int)`);
  await f.sql(`grant all on ${quoteIdent(table)} to ${quoteIdent(x)}, ${quoteIdent(y)}`);
  const holder = await f.openSession({ role: x, state: 'idle in transaction' });
  await holder.client.query(`lock table ${quoteIdent(table)} in access exclusive mode`);
  const waiter = await f.openSession({ role: y, state: 'idle' });
  const waiting = waiter.client.query(`select * from ${quoteIdent(table)}`).catch(() => undefined);
  await waitFor(async () => (await f.sql(`select 1 from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`, [waiter.pid])).rowCount, 'the waiter to wait');
  const cleanup = async () => {
    await holder.client.query('rollback').catch(() => undefined);
    await waiting;
    await f.sql(`drop table if exists ${quoteIdent(table)}`);
  };
  return { x, y, holder, waiter, cleanup };
}

const MISSING_GRANT = /hidden from pgwarden's role .*pg_read_all_stats.*GRANT pg_read_all_stats TO/;

describe('without pg_read_all_stats', () => {
  it('every command that reads sessions says how many it cannot see and the grant it lacks, once', async () => {
    const f = fixture();
    const scene = await pileUp(f);
    const w = await blindWarden(f, [scene.x]);
    try {
      // x's idle transaction past the plan's 1 s limit: what it cannot see would be a violation.
      await f.waitForAge([scene.holder.pid], 1);
      const as = ['--database-url', w.url(), '--log-level', 'error'];
      const sessions = await cli([...as, 'sessions', '--role', scene.x]);
      expect(sessions.code).toBe(0);
      expect(sessions.stderr).toMatch(MISSING_GRANT);
      expect(sessions.stderr.match(/hidden from/g)).toHaveLength(1);

      const locks = await cli([...as, 'locks']);
      expect(locks.stderr).toMatch(MISSING_GRANT);

      // The role list counts the hidden session as the session it is.
      const roles = await cli([...as, '--json', 'roles']);
      expect(roles.stderr).toMatch(MISSING_GRANT);
      const x = (JSON.parse(roles.stdout) as { role: string; sessions: number }[]).find((r) => r.role === scene.x);
      expect(x?.sessions).toBe(1);

      // plan sees nothing to judge, and says why: never "0 violations" in silence.
      const config = writeConfig({ policies: [{ name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s', match: { roles: [`${f.prefix}_*`] } }] });
      const plan = await cli([...as, '--config', config, '--json', 'plan', '--exit-code']);
      const out = JSON.parse(plan.stdout) as RunOutput;
      expect(out.violations).toEqual([]);
      expect(out.warnings?.join('\n')).toMatch(MISSING_GRANT);
      expect(plan.stderr).toMatch(MISSING_GRANT);
      expect(await f.alive(scene.holder.pid)).toBe(true);
    } finally {
      await scene.cleanup();
    }
  });

  it('a lockout whose sessions are hidden reports them failed and exits 1; NOLOGIN still holds', async () => {
    const f = fixture();
    const scene = await pileUp(f);
    const w = await blindWarden(f, [scene.x]);
    try {
      const config = writeConfig({ mode: 'enforce', policies: [{ name: 'dr', kind: 'disabled_role', disabledWhen: { roles: [scene.x] }, actions: ['nologin', 'terminate'] }] });
      const result = await cli(['--database-url', w.url(), '--log-level', 'error', '--config', config, '--json', 'run', '--once']);
      const out = JSON.parse(result.stdout) as RunOutput;
      expect(out.actions.map((a) => [a.action, a.pid ?? null, a.result])).toEqual([
        ['nologin', null, 'done'],
        ['terminate', scene.holder.pid, 'failed'],
      ]);
      expect(out.actions[1]?.detail).toMatch(/hidden.*pg_read_all_stats/);
      expect(result.code).toBe(1);
      expect(await f.alive(scene.holder.pid)).toBe(true);
      expect(await canLogIn(f, scene.x)).toBe(false);

      // logout says the same, with the same exit code.
      const logout = await cli(['--database-url', w.url(), '--log-level', 'error', '--json', 'logout', scene.x, '--yes']);
      expect((JSON.parse(logout.stdout) as RunOutput).actions.map((a) => a.result)).toEqual(['failed']);
      expect(logout.code).toBe(1);
    } finally {
      await scene.cleanup();
    }
  });

  it('a pile-up whose root is hidden is a lock_blocker violation it reports failed, not nothing', async () => {
    const f = fixture();
    const scene = await pileUp(f);
    const w = await blindWarden(f, []);
    // w sees the waiter (it has y's privileges), not the root x.
    await f.sql(`grant ${quoteIdent(scene.y)} to ${quoteIdent(w.role)}`);
    try {
      await f.waitForLockWait([scene.waiter.pid], 1);
      const config = writeConfig({ mode: 'enforce', policies: [{ name: 'lb', kind: 'lock_blocker', maxBlocked: '1s' }] });
      const result = await cli(['--database-url', w.url(), '--log-level', 'error', '--config', config, '--json', 'run', '--once']);
      const out = JSON.parse(result.stdout) as RunOutput;
      expect(out.violations.map((v) => [v.pid, v.role])).toEqual([[scene.holder.pid, scene.x]]);
      expect(out.violations[0]?.reason).toMatch(/root hidden from pgwarden/);
      expect(out.actions.map((a) => [a.pid, a.result])).toEqual([[scene.holder.pid, 'failed']]);
      expect(out.actions[0]?.detail).toMatch(/^hidden: .*pg_read_all_stats/);
      expect(result.code).toBe(1);
      expect(await f.alive(scene.holder.pid)).toBe(true);
    } finally {
      await scene.cleanup();
    }
  });

  it('the daemon counts hidden backends in pgwarden_sessions_hidden and warns once', async () => {
    const f = fixture();
    const scene = await pileUp(f);
    const w = await blindWarden(f, []);
    const config = writeConfig({ policies: [{ name: 'iit', kind: 'idle_in_transaction', schedule: '* * * * * *', maxIdle: '1s', match: { roles: [`${f.prefix}_*`] } }] });
    const daemon = await startTestDaemon(config, w.url());
    try {
      const text = await waitFor(async () => {
        const t = await daemon.metrics();
        return /pgwarden_sessions_hidden\{target="default"\} [1-9]/.test(t) && t;
      }, 'pgwarden_sessions_hidden above 0');
      // x's and y's backends at least (other tests' may be hidden too)
      expect(Number(/pgwarden_sessions_hidden\{target="default"\} (\d+)/.exec(text)?.[1])).toBeGreaterThanOrEqual(2);
      // More ticks: two more finished runs than when the gauge was first seen, so at least one whole
      // run (and its snapshot) after the one that warned. Still one warning.
      const runs = (t: string) => Number(/pgwarden_policy_run_duration_seconds_count\{target="default",policy="iit"\} (\d+)/.exec(t)?.[1] ?? 0);
      const seen = runs(text);
      await waitFor(async () => runs(await daemon.metrics()) >= seen + 2, 'more ticks');
      const warnings = daemon.log().filter((l) => typeof l.msg === 'string' && /hidden from pgwarden's role/.test(l.msg));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: 'warn', target: 'default' });
      expect(await f.alive(scene.holder.pid)).toBe(true);
    } finally {
      await daemon.stop();
      await scene.cleanup();
    }
  });
});

describe('readiness', () => {
  it('a failing role snapshot makes the target down (pgwarden_up 0, /readyz 503 with the error), and it comes back', async () => {
    const f = fixture();
    const w = await createBareRole(f, 'warden');
    const config = writeConfig({ policies: [{ name: 'pe', kind: 'password_expiry', schedule: '* * * * * *', warnWithin: '14d' }] });
    const daemon = await startTestDaemon(config, w.url());
    try {
      await waitFor(async () => (await daemon.readyz()).status === 200, 'ready');
      // pgwarden's own role is locked out and its sessions ended: every run fails from now on.
      await f.sql(`alter role ${quoteIdent(w.role)} nologin`);
      await f.sql('select pg_terminate_backend(pid) from pg_stat_activity where usename = $1', [w.role]);
      const down = await waitFor(async () => {
        const r = await daemon.readyz();
        return r.status === 503 && r;
      }, '/readyz 503', 15_000);
      expect(down.body.targets.default?.lastError).toMatch(/roles snapshot: .*not permitted to log in/);
      expect(await daemon.metrics()).toContain('pgwarden_up{target="default"} 0');

      await f.sql(`alter role ${quoteIdent(w.role)} login`);
      await waitFor(async () => (await daemon.readyz()).status === 200, 'ready again', 15_000);
      expect(await daemon.metrics()).toContain('pgwarden_up{target="default"} 1');
    } finally {
      await daemon.stop();
    }
  });
});

describe('as the superuser', () => {
  it('nothing is hidden and nothing is said', async () => {
    const f = fixture();
    const scene = await pileUp(f);
    try {
      const result = await cli(['--database-url', testDatabaseUrl(), '--log-level', 'error', 'sessions', '--role', scene.x]);
      expect(result.stderr).toBe('');
      expect(result.stdout).toContain(String(scene.holder.pid));
    } finally {
      await scene.cleanup();
    }
  });
});
