/**
 * What pgwarden never acts on, and what it cannot act on (issue 14, cases 2, 3 and 6): its own
 * role, the reserved pg_* roles and the bootstrap superuser are never candidates — policies skip
 * them and say so, commands refuse them with exit 2 before any change; a backend pgwarden may not
 * signal is classified once, as the server decides, and fails the same way on every path.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunOutput } from '../src/cli/run.js';
import { quoteIdent } from '../src/db/quote.js';
import { cli } from './support/cli.js';
import { startEmbeddedServer, type EmbeddedServer } from './support/embedded.js';
import { useConfigFiles } from './support/config-file.js';
import { testDatabaseUrl, useFixture, waitFor } from './support/fixture.js';
import { canLogIn, createBareRole, createCloudAdmin, serverVersionNum } from './support/roles.js';

const fixture = useFixture('protect');

let throwaway: EmbeddedServer | undefined;
afterAll(async () => {
  await throwaway?.stop();
});

/** A server no other test file uses: the matrix's own, or an embedded one started for this file. */
async function throwawayServerUrl(): Promise<string> {
  if (process.env.PGWARDEN_TEST_EXPECT_MAJOR) return testDatabaseUrl();
  throwaway ??= await startEmbeddedServer({ package: 'pg17' });
  return throwaway.url;
}
const writeConfig = useConfigFiles('protect');

async function bootstrapRole(f: ReturnType<typeof fixture>): Promise<string> {
  const { rows } = await f.sql<{ rolname: string }>('select rolname from pg_roles where oid = 10');
  return rows[0]!.rolname;
}

describe('pgwarden never acts on itself', () => {
  it('a disabled_role policy listing the role pgwarden connects as skips it and says so; its sessions live', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const other = await f.createRole(f.name('leaver'));
    // A replica's connection: a session of pgwarden's role that is not this process's.
    const replica = await f.openSession({ role: admin.role, state: 'idle' });
    const leaver = await f.openSession({ role: other, state: 'idle' });
    if ((await serverVersionNum(f)) >= 160000) await f.sql(`grant ${quoteIdent(other)} to ${quoteIdent(admin.role)} with admin option`);
    const config = writeConfig({
      mode: 'enforce',
      policies: [
        { name: 'dr', kind: 'disabled_role', disabledWhen: { roles: [admin.role, other] }, actions: ['nologin', 'terminate'] },
        // an idle_session rule that covers every role: not pgwarden's own
        { name: 'idle', kind: 'idle_session', maxIdle: '1s', match: { roles: [`${f.prefix}_*`] } },
      ],
    });
    await f.waitForAge([replica.pid, leaver.pid], 1);
    const result = await cli(['--database-url', admin.url(), '--log-level', 'error', '--config', config, '--json', 'run', '--once']);
    const out = JSON.parse(result.stdout) as RunOutput;
    expect(out.actions.filter((a) => a.role === admin.role)).toEqual([]);
    expect(out.violations.filter((v) => v.role === admin.role)).toEqual([]);
    expect(out.warnings?.join('\n')).toMatch(new RegExp(`policy dr: role "${admin.role}" is the role pgwarden is connected as: pgwarden never acts on it`));
    expect(result.stderr).toMatch(/the role pgwarden is connected as/);
    expect(result.code).toBe(0);
    expect(await canLogIn(f, admin.role)).toBe(true);
    expect(await f.alive(replica.pid)).toBe(true);
    // the other role was locked out as usual
    await waitFor(async () => !(await f.alive(leaver.pid)), 'the leaver to be logged out');
    expect(await canLogIn(f, other)).toBe(false);
  });

  it('as a superuser with exempt.superusers false: not itself, not the bootstrap superuser', async () => {
    // Were this ever to regress, the bootstrap superuser would be made NOLOGIN: never on the
    // shared server every other test file connects as. The matrix's servers are throwaway already.
    const url = await throwawayServerUrl();
    const admin = new pg.Client(url);
    await admin.connect();
    const su = `pgw_protect_su_${Math.random().toString(36).slice(2, 8)}`;
    try {
      await admin.query(`create role ${quoteIdent(su)} login superuser password 'fixture-pw'`);
      const bootstrap = (await admin.query<{ rolname: string }>('select rolname from pg_roles where oid = 10')).rows[0]!.rolname;
      const asSu = new URL(url);
      asSu.username = encodeURIComponent(su);
      asSu.password = 'fixture-pw';
      const config = writeConfig({
        mode: 'enforce',
        exempt: { superusers: false, roles: [] },
        policies: [{ name: 'dr', kind: 'disabled_role', disabledWhen: { roles: [su, bootstrap] }, actions: ['nologin', 'terminate'] }],
      });
      const result = await cli(['--database-url', asSu.toString(), '--log-level', 'error', '--config', config, '--json', 'run', '--once']);
      const out = JSON.parse(result.stdout) as RunOutput;
      expect(out.actions).toEqual([]);
      expect(out.warnings?.join('\n')).toMatch(/is the role pgwarden is connected as/);
      expect(out.warnings?.join('\n')).toMatch(/is the bootstrap superuser/);
      expect(result.code).toBe(0);
      const { rows } = await admin.query<{ rolname: string; rolcanlogin: boolean }>('select rolname, rolcanlogin from pg_roles where rolname = any($1) order by 1', [[su, bootstrap]]);
      expect(rows.every((r) => r.rolcanlogin)).toBe(true);
    } finally {
      await admin.query(`drop role if exists ${quoteIdent(su)}`).catch(() => undefined);
      await admin.end();
    }
  });
});

describe('reserved roles and the bootstrap superuser', () => {
  it('every command that changes a role refuses them, and pgwarden\'s own, with exit 2 and changes nothing', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const bootstrap = await bootstrapRole(f);
    const as = ['--database-url', admin.url(), '--log-level', 'error'];
    const cases: [string[], RegExp][] = [
      [['logout', 'pg_monitor', '--lock', '--yes'], /"pg_monitor" is a reserved pg_\* role/],
      [['logout', 'pg_read_all_stats', '--yes'], /reserved pg_\* role/],
      [['passwd', 'pg_monitor'], /"pg_monitor" is a reserved pg_\* role/],
      [['offboard', 'pg_monitor', '--reassign-to', admin.role, '--yes'], /reserved pg_\* role/],
      [['logout', bootstrap, '--lock', '--yes'], /is the bootstrap superuser/],
      [['passwd', bootstrap], /is the bootstrap superuser/],
      [['offboard', bootstrap, '--reassign-to', admin.role, '--force', '--yes'], /is the bootstrap superuser/],
      [['logout', admin.role, '--lock', '--yes'], /is the role pgwarden is connected as/],
      [['passwd', admin.role], /is the role pgwarden is connected as/],
      [['offboard', admin.role, '--reassign-to', bootstrap, '--yes'], /is the role pgwarden is connected as/],
      [['adduser', admin.role, '--update', '--no-expiry'], /is the role pgwarden is connected as/],
    ];
    for (const [args, message] of cases) {
      const result = await cli([...as, ...args], {}, { stdin: 'N3w-secret-pw\n' });
      expect([args.join(' '), result.code]).toEqual([args.join(' '), 2]);
      expect(result.stderr).toMatch(message);
      expect(result.stdout).toBe('');
    }
    expect(await canLogIn(f, admin.role)).toBe(true);
    expect(await canLogIn(f, bootstrap)).toBe(true);
  });

  it('logout --database ends everyone there but pgwarden\'s own role and the bootstrap superuser, and says so', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const app = await f.createRole(f.name('app'));
    const db = await f.createDatabase(f.name('db'));
    const mine = await f.openSession({ role: admin.role, database: db, state: 'idle' });
    const theirs = await f.openSession({ role: app, database: db, state: 'idle' });
    const owner = await f.openSession({ database: db, state: 'idle' }); // as the test server's user
    const bootstrap = await bootstrapRole(f);
    const { rows } = await f.sql<{ usename: string }>('select usename from pg_stat_activity where pid = $1', [owner.pid]);
    const result = await cli(['--database-url', admin.url(), '--log-level', 'error', '--json', 'logout', '--database', db, '--yes']);
    const out = JSON.parse(result.stdout) as RunOutput;
    const byPid = new Map(out.actions.map((a) => [a.pid, a]));
    expect(byPid.get(theirs.pid)?.result).toBe('done');
    expect(byPid.get(mine.pid)).toMatchObject({ result: 'skipped', detail: 'the role pgwarden is connected as: pgwarden never acts on it' });
    if (rows[0]?.usename === bootstrap) {
      expect(byPid.get(owner.pid)).toMatchObject({ result: 'skipped', detail: 'the bootstrap superuser: pgwarden never acts on it' });
      expect(result.code).toBe(0);
    }
    await waitFor(async () => !(await f.alive(theirs.pid)), 'the app session to end');
    expect(await f.alive(mine.pid)).toBe(true);
  });
});

describe('signal rights', () => {
  it('a superuser\'s backend pgwarden may not signal is "cannot be signalled" in plan, run --once and logout, all exit 1', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const boss = await f.createRole(f.name('boss'), 'superuser');
    const db = await f.createDatabase(f.name('db'));
    const tx = await f.openSession({ role: boss, database: db, state: 'idle in transaction' });
    await f.waitForAge([tx.pid], 1);
    const config = writeConfig({
      mode: 'enforce',
      exempt: { superusers: false },
      policies: [{ name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s', match: { roles: [boss] } }],
    });
    const as = ['--database-url', admin.url(), '--log-level', 'error', '--json'];
    const plan = await cli([...as, '--config', config, 'plan']);
    const planned = JSON.parse(plan.stdout) as RunOutput;
    expect(planned.actions.map((a) => [a.pid, a.result])).toEqual([[tx.pid, 'failed']]);
    expect(planned.actions[0]?.detail).toMatch(/^cannot be signalled: a superuser's backend/);
    expect(plan.code).toBe(1);

    const run = await cli([...as, '--config', config, 'run', '--once']);
    const ran = JSON.parse(run.stdout) as RunOutput;
    expect(ran.actions.map((a) => [a.pid, a.result, a.detail])).toEqual(planned.actions.map((a) => [a.pid, a.result, a.detail]));
    expect(run.code).toBe(1);

    const logout = await cli([...as, 'logout', '--database', db, '--yes']);
    const out = JSON.parse(logout.stdout) as RunOutput;
    // Tests running beside this one visit every database as the bootstrap superuser (owned,
    // offboard): such a session in `db` is skipped, never acted on, and is not this test's subject.
    const visitors = (a: RunOutput['actions'][number]) => a.result === 'skipped' && /the bootstrap superuser: pgwarden never acts on it/.test(a.detail ?? '');
    expect(out.actions.filter((a) => !visitors(a)).map((a) => [a.pid, a.result, a.detail])).toEqual(planned.actions.map((a) => [a.pid, a.result, a.detail]));
    expect(logout.code).toBe(1);
    expect(await f.alive(tx.pid)).toBe(true);

    // The text plan says it in words.
    const text = await cli(['--database-url', admin.url(), '--log-level', 'error', '--config', config, 'plan']);
    expect(text.stdout).toMatch(/-> terminate: failed \(cannot be signalled: a superuser's backend/);
  });

  it('membership without the role\'s privileges is not enough to signal (16+: a grant WITH INHERIT FALSE), as the server decides', async () => {
    const f = fixture();
    if ((await serverVersionNum(f)) < 160000) {
      // Before 16 inheritance is the member's own attribute: a NOINHERIT role inherits nothing,
      // not even pg_read_all_stats, so it cannot see the session to begin with (visibility.test.ts).
      return;
    }
    const w = await createBareRole(f, 'w');
    await f.sql(`grant pg_read_all_stats to ${quoteIdent(w.role)}`);
    const app = await f.createRole(f.name('app'));
    await f.sql(`grant ${quoteIdent(app)} to ${quoteIdent(w.role)} with inherit false`);
    const tx = await f.openSession({ role: app, state: 'idle in transaction' });
    await f.waitForAge([tx.pid], 1);
    const config = writeConfig({ mode: 'enforce', policies: [{ name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s', match: { roles: [app] } }] });
    const run = await cli(['--database-url', w.url(), '--log-level', 'error', '--json', '--config', config, 'run', '--once']);
    const out = JSON.parse(run.stdout) as RunOutput;
    expect(out.actions.map((a) => [a.pid, a.result])).toEqual([[tx.pid, 'failed']]);
    expect(out.actions[0]?.detail).toMatch(/cannot be signalled: pgwarden's role has neither pg_signal_backend nor the privileges of/);
    expect(run.code).toBe(1);
    expect(await f.alive(tx.pid)).toBe(true);
  });
});

describe('what it may not alter', () => {
  it('a NOLOGIN it may not make is failed in plan and in run, and the role\'s sessions are left alone', async () => {
    const f = fixture();
    const w = await createBareRole(f, 'w'); // no CREATEROLE
    await f.sql(`grant pg_read_all_stats, pg_signal_backend to ${quoteIdent(w.role)}`);
    const leaver = await f.createRole(f.name('leaver'));
    const s = await f.openSession({ role: leaver, state: 'idle' });
    const config = writeConfig({ mode: 'enforce', policies: [{ name: 'dr', kind: 'disabled_role', disabledWhen: { roles: [leaver] }, actions: ['nologin', 'terminate'] }] });
    for (const command of ['plan', 'run']) {
      const result = await cli(['--database-url', w.url(), '--log-level', 'error', '--config', config, '--json', command, ...(command === 'run' ? ['--once'] : [])]);
      const out = JSON.parse(result.stdout) as RunOutput;
      expect(out.actions.map((a) => [a.action, a.result])).toEqual([
        ['nologin', 'failed'],
        ['terminate', 'skipped'],
      ]);
      expect(out.actions[0]?.detail).toBe("cannot alter the role: pgwarden's role lacks CREATEROLE (see pgwarden doctor)");
      expect(result.code).toBe(1);
    }
    expect(await f.alive(s.pid)).toBe(true);
    expect(await canLogIn(f, leaver)).toBe(true);
  });

  it('passwd of a role it may not alter is refused before the verifier is sent', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const boss = await f.createRole(f.name('boss'), 'superuser');
    const before = (await f.sql<{ p: string }>('select rolpassword as p from pg_authid where rolname = $1', [boss])).rows[0]?.p;
    const result = await cli(['--database-url', admin.url(), 'passwd', boss], {}, { stdin: 'Another-pw-1\n' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`cannot set the password of "${boss}": a superuser role: only a superuser may alter it (see pgwarden doctor); nothing was sent`);
    expect((await f.sql<{ p: string }>('select rolpassword as p from pg_authid where rolname = $1', [boss])).rows[0]?.p).toBe(before);
  });
});
