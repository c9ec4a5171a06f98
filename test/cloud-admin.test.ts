/**
 * Every command and every policy kind as the cloud-admin role (test/support/roles.ts): LOGIN,
 * CREATEROLE, pg_signal_backend, pg_read_all_stats; not a superuser, and a member of the roles it
 * manages only where a test grants it (on 16+ CREATEROLE alters only roles it holds ADMIN on).
 * This is how most users run pgwarden; the superuser tests are elsewhere. In the version matrix.
 */
import { describe, expect, it } from 'vitest';
import type { RunOutput } from '../src/cli/run.js';
import { quoteIdent } from '../src/db/quote.js';
import { cli } from './support/cli.js';
import { useConfigFiles } from './support/config-file.js';
import { startTestDaemon } from './support/daemon.js';
import { ROLE_PASSWORD, tryLogin, urlFor, useFixture, waitFor, type Fixture } from './support/fixture.js';
import { canLogIn, createCloudAdmin, grantAdminOn, serverVersionNum, type TestLogin } from './support/roles.js';

const fixture = useFixture('cloudadmin');
const writeConfig = useConfigFiles('cloudadmin');

/** On 16+, what the admin needs to alter roles someone else created: ADMIN OPTION on them. */
async function manage(f: Fixture, admin: TestLogin, roles: readonly string[]): Promise<void> {
  if ((await serverVersionNum(f)) >= 160000) await grantAdminOn(f, admin, roles);
}

function as(admin: TestLogin): string[] {
  return ['--database-url', admin.url(), '--log-level', 'error'];
}

describe('as the cloud-admin role', () => {
  it('reads: sessions, roles, locks, owned, access — with the state of other roles\' sessions and no warning', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const app = await f.createRole(f.name('app'));
    const db = await f.createDatabase(f.name('db'), app);
    const table = f.name('t');
    await f.sql(`create table ${quoteIdent(table)} (id int)`);
    await f.sql(`alter table ${quoteIdent(table)} owner to ${quoteIdent(app)}`);
    const holder = await f.openSession({ role: app, state: 'idle in transaction' });
    await holder.client.query(`lock table ${quoteIdent(table)} in access exclusive mode`);
    const waiter = await f.openSession({ role: admin.role, state: 'idle' });
    const waiting = waiter.client.query(`select * from ${quoteIdent(table)}`).catch(() => undefined);
    try {
      await waitFor(async () => (await f.sql(`select 1 from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`, [waiter.pid])).rowCount, 'the wait');

      const sessions = await cli([...as(admin), '--json', 'sessions', '--role', app]);
      expect(sessions.stderr).toBe('');
      expect((JSON.parse(sessions.stdout) as { pid: number; state: string }[]).map((s) => [s.pid, s.state])).toEqual([[holder.pid, 'idle in transaction']]);

      const roles = await cli([...as(admin), '--json', 'roles']);
      expect(roles.stderr).toBe('');
      expect((JSON.parse(roles.stdout) as { role: string; sessions: number }[]).find((r) => r.role === app)?.sessions).toBe(1);

      const locks = await cli([...as(admin), '--json', 'locks']);
      expect(locks.stderr).toBe('');
      const graph = JSON.parse(locks.stdout) as { roots: { pid: number; waiters: { pid: number }[] }[] };
      expect(graph.roots.find((r) => r.pid === holder.pid)?.waiters.map((w) => w.pid)).toEqual([waiter.pid]);

      const owned = await cli([...as(admin), '--json', 'owned', app]);
      expect(owned.code).toBe(0);
      const objects = JSON.parse(owned.stdout) as { database: string; type: string; name: string }[];
      expect(objects).toEqual(expect.arrayContaining([expect.objectContaining({ name: table }), expect.objectContaining({ database: db, type: 'database' })]));

      const access = await cli([...as(admin), '--json', 'access', app, '--database', 'postgres']);
      expect(access.code).toBe(0);
      expect(access.stdout).toContain(app);
    } finally {
      await holder.client.query('rollback').catch(() => undefined);
      await waiting;
      await f.sql(`drop table if exists ${quoteIdent(table)}`);
    }
  });

  it('enforces every session policy kind: idle_in_transaction, idle_session, long_query, long_transaction, lock_blocker', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const roles = {
      iit: await f.createRole(f.name('iit')),
      idle: await f.createRole(f.name('idle')),
      lq: await f.createRole(f.name('lq')),
      lt: await f.createRole(f.name('lt')),
      root: await f.createRole(f.name('root')),
      waiter: await f.createRole(f.name('waiter')),
    };
    const table = f.name('t');
    await f.sql(`create table ${quoteIdent(table)} (id int)`);
    await f.sql(`grant all on ${quoteIdent(table)} to ${quoteIdent(roles.root)}, ${quoteIdent(roles.waiter)}`);
    const iit = await f.openSession({ role: roles.iit, state: 'idle in transaction' });
    const idle = await f.openSession({ role: roles.idle, state: 'idle' });
    const lq = await f.openSession({ role: roles.lq, state: 'active' });
    const lt = await f.openSession({ role: roles.lt, state: 'idle in transaction' });
    const root = await f.openSession({ role: roles.root, state: 'idle in transaction' });
    await root.client.query(`lock table ${quoteIdent(table)} in access exclusive mode`);
    const waiter = await f.openSession({ role: roles.waiter, state: 'idle' });
    const waiting = waiter.client.query(`select * from ${quoteIdent(table)}`).catch(() => undefined);
    await waitFor(async () => (await f.sql(`select 1 from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`, [waiter.pid])).rowCount, 'the wait');
    // Every session past its policy's 1 s limit, measured as that policy measures it.
    await f.waitForAge([iit.pid, idle.pid], 1, 'state_change');
    await f.waitForAge([lq.pid], 1, 'query_start');
    await f.waitForAge([lt.pid], 1, 'xact_start');
    await f.waitForLockWait([waiter.pid], 1);
    const only = (role: string) => ({ roles: [role] });
    const config = writeConfig({
      mode: 'enforce',
      safety: { maxFraction: 1, minActions: 100 },
      policies: [
        { name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s', match: only(roles.iit) },
        { name: 'idle', kind: 'idle_session', maxIdle: '1s', match: only(roles.idle) },
        { name: 'lq', kind: 'long_query', maxDuration: '1s', action: 'cancel', match: only(roles.lq) },
        { name: 'lt', kind: 'long_transaction', maxDuration: '1s', match: only(roles.lt) },
        { name: 'lb', kind: 'lock_blocker', maxBlocked: '1s', match: only(roles.root) },
      ],
    });
    try {
      const result = await cli([...as(admin), '--config', config, '--json', 'run', '--once']);
      const out = JSON.parse(result.stdout) as RunOutput;
      expect(result.stderr).toBe('');
      expect(out.actions.map((a) => [a.policy, a.action, a.pid, a.result]).sort()).toEqual(
        [
          ['iit', 'terminate', iit.pid, 'done'],
          ['idle', 'terminate', idle.pid, 'done'],
          ['lb', 'terminate', root.pid, 'done'],
          ['lq', 'cancel', lq.pid, 'done'],
          ['lt', 'terminate', lt.pid, 'done'],
        ].sort(),
      );
      expect(result.code).toBe(0);
      for (const pid of [iit.pid, idle.pid, lt.pid, root.pid]) await waitFor(async () => !(await f.alive(pid)), `pid ${pid} to end`);
      expect(await f.alive(lq.pid)).toBe(true); // cancelled, not ended
      await waiting;
    } finally {
      await f.sql(`drop table if exists ${quoteIdent(table)}`);
    }
  });

  it('enforces the role policy kinds: password_expiry (nologin) and disabled_role', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const expired = await f.createRole(f.name('expired'), "valid until '2001-01-01'");
    const leaver = await f.createRole(f.name('leaver'));
    await manage(f, admin, [expired, leaver]);
    const session = await f.openSession({ role: leaver, state: 'idle' });
    const config = writeConfig({
      mode: 'enforce',
      policies: [
        { name: 'pe', kind: 'password_expiry', warnWithin: '14d', action: 'nologin', grace: '1d', match: { roles: [`${f.prefix}_*`] } },
        { name: 'dr', kind: 'disabled_role', disabledWhen: { roles: [leaver] }, actions: ['nologin', 'terminate', 'revoke_connect'] },
      ],
    });
    const result = await cli([...as(admin), '--config', config, '--json', 'run', '--once']);
    const out = JSON.parse(result.stdout) as RunOutput;
    const mine = out.actions.filter((a) => a.role === expired || a.role === leaver);
    expect(mine.filter((a) => a.action !== 'revoke_connect').map((a) => [a.policy, a.action, a.role, a.result])).toEqual([
      ['pe', 'nologin', expired, 'done'],
      ['dr', 'nologin', leaver, 'done'],
      ['dr', 'terminate', leaver, 'done'],
    ]);
    expect(await canLogIn(f, expired)).toBe(false);
    expect(await canLogIn(f, leaver)).toBe(false);
    await waitFor(async () => !(await f.alive(session.pid)), 'the leaver to be logged out');
  });

  it('changes roles by hand: adduser, passwd, logout --lock, offboard', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    // adduser: the admin creates the role (and holds ADMIN on it, on 16+, as managed services do).
    const user = f.name('user');
    const added = await cli([...as(admin), '--json', 'adduser', user, '--valid-for', '30d'], {}, { stdin: 'first-Pw-123\n' });
    expect(added.code).toBe(0);
    await f.sql('select 1'); // the fixture drops roles it created; this one it did not: drop it at the end
    try {
      const passwd = await cli([...as(admin), 'passwd', user], {}, { stdin: `${ROLE_PASSWORD}\n` });
      expect(passwd.code).toBe(0);
      expect(await tryLogin(urlFor('postgres', { name: user, password: ROLE_PASSWORD }))).toBe(true);

      const s = await f.openSession({ role: user, state: 'idle' });
      const logout = await cli([...as(admin), '--json', 'logout', user, '--lock', '--yes']);
      expect((JSON.parse(logout.stdout) as RunOutput).actions.map((a) => [a.action, a.result])).toEqual([
        ['nologin', 'done'],
        ['terminate', 'done'],
      ]);
      expect(logout.code).toBe(0);
      await waitFor(async () => !(await f.alive(s.pid)), 'the session to end');

      // REASSIGN OWNED needs the privileges of the role offboarded: the test grants them (on 16+
      // the admin already holds the role, from creating it, but WITH INHERIT FALSE: made TRUE).
      const inherit = (await serverVersionNum(f)) >= 160000 ? ' with inherit true' : '';
      await f.sql(`grant ${quoteIdent(user)} to ${quoteIdent(admin.role)}${inherit}`);
      const table = f.name('owned');
      await f.sql(`create table ${quoteIdent(table)} (id int)`);
      await f.sql(`alter table ${quoteIdent(table)} owner to ${quoteIdent(user)}`);
      const offboard = await cli([...as(admin), '--json', 'offboard', user, '--reassign-to', admin.role, '--drop', '--yes']);
      expect(offboard.code, offboard.stdout).toBe(0);
      const steps = (JSON.parse(offboard.stdout) as RunOutput).actions;
      expect(steps.filter((a) => a.result !== 'done')).toEqual([]);
      expect(steps.at(-1)).toMatchObject({ action: 'drop_role', result: 'done' });
      const { rows } = await f.sql<{ owner: string }>('select tableowner as owner from pg_tables where tablename = $1', [table]);
      expect(rows[0]?.owner).toBe(admin.role);
      expect((await f.sql('select 1 from pg_roles where rolname = $1', [user])).rowCount).toBe(0);
      await f.sql(`drop table ${quoteIdent(table)}`);
    } finally {
      // Kept quiet: a failed assertion above tells more than this cleanup would.
      await f.sql(`drop owned by ${quoteIdent(user)} cascade`).catch(() => undefined);
      await f.sql(`drop role if exists ${quoteIdent(user)}`).catch(() => undefined);
    }
  });

  it('runs as a daemon: a role disabled after the first ticks is locked out (the kept role columns are sent again once a role changes)', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const marker = await f.createRole(f.name('off'), 'nologin');
    const user = await f.createRole(f.name('user'));
    await manage(f, admin, [user]);
    const config = writeConfig({
      mode: 'enforce',
      policies: [{ name: 'off', kind: 'disabled_role', schedule: '* * * * * *', disabledWhen: { memberOf: marker }, actions: ['nologin'], match: { roles: [user] } }],
    });
    const daemon = await startTestDaemon(config, admin.url());
    try {
      // Two runs first: from then on the daemon holds the roles, and the server resends them only when they change.
      await waitFor(async () => {
        const runs = /pgwarden_policy_run_duration_seconds_count\{target="default",policy="off"\} (\d+)/.exec(await daemon.metrics());
        return Number(runs?.[1] ?? 0) >= 2;
      }, 'two runs of the policy', 15_000);
      expect(await canLogIn(f, user)).toBe(true);
      await f.sql(`grant ${quoteIdent(marker)} to ${quoteIdent(user)}`);
      await waitFor(async () => !(await canLogIn(f, user)), 'the daemon to lock out the role disabled after it started', 15_000);
    } finally {
      await daemon.stop();
    }
  });

  it('runs as a daemon: sees everything (pgwarden_sessions_hidden 0), acts, and logs no gap for its session policies', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const app = await f.createRole(f.name('app'));
    const tx = await f.openSession({ role: app, state: 'idle in transaction' });
    const config = writeConfig({ mode: 'enforce', policies: [{ name: 'iit', kind: 'idle_in_transaction', schedule: '* * * * * *', maxIdle: '1s', match: { roles: [app] } }] });
    const daemon = await startTestDaemon(config, admin.url());
    try {
      await waitFor(async () => !(await f.alive(tx.pid)), 'the daemon to end the transaction', 15_000);
      const metrics = await daemon.metrics();
      expect(metrics).toContain('pgwarden_sessions_hidden{target="default"} 0');
      expect(metrics).toContain('pgwarden_actions_total{target="default",policy="iit",action="terminate",result="done"} 1');
      const gaps = daemon.log().filter((l) => l.level === 'warn');
      expect(gaps).toEqual([]);
    } finally {
      await daemon.stop();
    }
  });
});

describe('as the cloud-admin role, what it cannot revoke', () => {
  it('a REVOKE CONNECT that revokes nothing (not the owner, not the grantor) is failed, never done; on a database it owns it works', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const app = await f.createRole(f.name('app'));
    await manage(f, admin, [app]);
    const theirs = await f.createDatabase(f.name('theirs')); // owned by the test's superuser
    const mine = await f.createDatabase(f.name('mine'), admin.role);
    for (const db of [theirs, mine]) {
      await f.sql(`revoke connect on database ${quoteIdent(db)} from public`);
      await f.sql(`grant connect on database ${quoteIdent(db)} to ${quoteIdent(app)}`);
    }
    const config = writeConfig({
      mode: 'enforce',
      policies: [{ name: 'dr', kind: 'disabled_role', disabledWhen: { roles: [app] }, actions: ['revoke_connect'], match: { roles: [app] } }],
    });
    const result = await cli([...as(admin), '--config', config, '--json', 'run', '--once']);
    const byDb = new Map((JSON.parse(result.stdout) as RunOutput).actions.map((a) => [a.database, a]));
    expect(byDb.get(theirs)).toMatchObject({ action: 'revoke_connect', result: 'failed' });
    expect(byDb.get(theirs)?.detail).toMatch(/no privileges could be revoked.*see pgwarden doctor/);
    expect(byDb.get(mine)).toMatchObject({ action: 'revoke_connect', result: 'done', effective: true });
    expect(result.code).toBe(1);
    const can = async (db: string) => (await f.sql<{ c: boolean }>(`select has_database_privilege($1, $2, 'CONNECT') as c`, [app, db])).rows[0]?.c;
    expect(await can(theirs)).toBe(true);
    expect(await can(mine)).toBe(false);

    // logout --database --lock: the lock that did nothing is failed, and nobody is logged out unlocked.
    const s = await f.openSession({ role: app, database: theirs, state: 'idle' });
    const logout = await cli([...as(admin), '--json', 'logout', '--database', theirs, '--lock', '--yes']);
    const actions = (JSON.parse(logout.stdout) as RunOutput).actions;
    expect(actions.filter((a) => a.action === 'revoke_connect').every((a) => a.result === 'failed')).toBe(true);
    expect(actions.find((a) => a.pid === s.pid)).toMatchObject({ result: 'skipped' });
    expect(logout.code).toBe(1);
    expect(await f.alive(s.pid)).toBe(true);
  });
});
