/** Role policies end to end against the real server: expiring passwords and disabled users. */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { RunOutput } from '../../src/cli/run.js';
import { loadConfig } from '../../src/config/load.js';
import { quoteIdent } from '../../src/db/quote.js';
import { Engine } from '../../src/engine.js';
import { Metrics } from '../../src/metrics/registry.js';
import { cli } from '../support/cli.js';
import { useConfigFiles } from '../support/config-file.js';
import { ROLE_PASSWORD, testDatabaseUrl, tryLogin, urlFor, useFixture, waitFor } from '../support/fixture.js';
import { testTarget } from '../support/target.js';

const fixture = useFixture('rolepol');
const writeConfig = useConfigFiles('rolepol');
const DAY = 86_400_000;

async function run(args: string[]): Promise<{ code: number; out: RunOutput; audit: Record<string, unknown>[] }> {
  const result = await cli(['--database-url', testDatabaseUrl(), '--json', ...args]);
  const audit = result.stderr
    .split('\n')
    .filter((l) => l.includes('"audit":true'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code: result.code, out: JSON.parse(result.stdout) as RunOutput, audit };
}

function canLogIn(role: string, database = 'postgres'): Promise<string | true> {
  return tryLogin(urlFor(database, { name: role, password: ROLE_PASSWORD }));
}

describe('disabled_role', () => {
  it('locks a disabled user out: NOLOGIN first, sessions ended, CONNECT revoked — and says where PUBLIC still grants it', async () => {
    const f = fixture();
    const marker = await f.createRole(f.name('disabled'), 'nologin');
    const group = await f.createRole(f.name('leavers'), 'nologin');
    const alice = await f.createRole(f.name(`Al"ice Ünï`));
    const bystander = await f.createRole(f.name('stays'));
    await f.sql(`grant ${quoteIdent(marker)} to ${quoteIdent(group)}`);
    await f.sql(`grant ${quoteIdent(group)} to ${quoteIdent(alice)}`);
    const closed = await f.createDatabase(f.name('closed'));
    await f.sql(`revoke connect on database ${quoteIdent(closed)} from public`);
    await f.sql(`grant connect on database ${quoteIdent(closed)} to ${quoteIdent(alice)}`);
    const s1 = await f.openSession({ role: alice, state: 'idle' });
    const s2 = await f.openSession({ role: alice, database: closed, state: 'idle in transaction' });
    const other = await f.openSession({ role: bystander, state: 'idle' });

    const config = writeConfig({
      mode: 'enforce',
      policies: [
        {
          name: 'disabled',
          kind: 'disabled_role',
          match: { roles: [`${f.prefix}_*`] },
          disabledWhen: { memberOf: marker },
          actions: ['revoke_connect', 'terminate', 'nologin'],
        },
      ],
    });
    const { code, out, audit } = await run(['--config', config, 'run', '--once']);
    // (other tests' databases may be dropped while this runs: those revokes are `gone`, not failures)
    expect(JSON.stringify([out.errors, out.actions.filter((a) => a.result !== 'done' && a.result !== 'gone')])).toBe('[null,[]]');
    expect(code).toBe(0);
    // alice through the group, and the group itself (a member of the marker too)
    expect(out.violations.map((v) => v.role).sort()).toEqual([alice, group].sort());
    expect(out.violations.find((v) => v.role === alice)).toEqual({
      target: 'default',
      policy: 'disabled',
      kind: 'disabled_role',
      condition: 'memberOf',
      role: alice,
      reason: `member of ${marker}`,
    });
    const kinds = out.actions.map((a) => a.action);
    expect(kinds.indexOf('nologin')).toBe(0);
    expect(kinds.lastIndexOf('terminate')).toBeLessThan(kinds.indexOf('revoke_connect'));
    expect(out.actions.filter((a) => a.action === 'terminate').map((a) => a.pid).sort()).toEqual([s1.pid, s2.pid].sort());
    expect(out.actions.filter((a) => a.action !== 'revoke_connect').every((a) => a.result === 'done')).toBe(true);

    // NOLOGIN holds, sessions ended, a new connection is refused; the bystander is untouched
    const { rows } = await f.sql<{ rolcanlogin: boolean }>('select rolcanlogin from pg_roles where rolname = $1', [alice]);
    expect(rows[0]?.rolcanlogin).toBe(false);
    for (const s of [s1, s2]) await waitFor(async () => !(await f.alive(s.pid)), `pid ${s.pid} to end`);
    expect(await canLogIn(alice)).toMatch(/not permitted to log in/);
    expect(await f.alive(other.pid)).toBe(true);

    // The explicit grant is gone and the revoke is effective there; where PUBLIC grants CONNECT, it says so.
    const revokes = out.actions.filter((a) => a.action === 'revoke_connect');
    const onClosed = revokes.find((a) => a.database === closed)!;
    expect(onClosed).toMatchObject({ result: 'done', effective: true });
    const onPostgres = revokes.find((a) => a.database === 'postgres')!;
    expect(onPostgres.effective).toBe(false);
    expect(onPostgres.detail).toMatch(/still reaches .* through PUBLIC/);
    const { rows: priv } = await f.sql<{ ok: boolean }>(`select has_database_privilege($1, $2, 'CONNECT') as ok`, [alice, closed]);
    expect(priv[0]?.ok).toBe(false);

    // The audit log carries the SQL that restores what was removed; running it restores it.
    const restoreGrant = audit.find((a) => a.action === 'revoke_connect' && a.database === closed)?.restore as string;
    expect(restoreGrant).toBe(`grant connect on database ${quoteIdent(closed)} to ${quoteIdent(alice)}`);
    expect(audit.find((a) => a.action === 'nologin')?.restore).toBe(`alter role ${quoteIdent(alice)} login`);
    await f.sql(restoreGrant);
    const { rows: back } = await f.sql<{ ok: boolean }>(`select has_database_privilege($1, $2, 'CONNECT') as ok`, [alice, closed]);
    expect(back[0]?.ok).toBe(true);

    // A second run changes nothing: every action is idempotent and only planned when needed.
    const again = await run(['--config', config, 'run', '--once']);
    expect(again.out.actions.filter((a) => a.action !== 'revoke_connect')).toEqual([]);
  });

  it('flags a NOLOGIN role that still has sessions and ends them', async () => {
    const f = fixture();
    const bob = await f.createRole(f.name('bob'));
    const s = await f.openSession({ role: bob, state: 'idle' });
    await f.sql(`alter role ${quoteIdent(bob)} nologin`);
    const config = writeConfig({
      policies: [{ name: 'd', kind: 'disabled_role', mode: 'enforce', match: { roles: [`${f.prefix}_*`] }, disabledWhen: { nologin: true }, actions: ['terminate'] }],
    });
    const { out } = await run(['--config', config, 'run', '--once']);
    expect(out.violations.map((v) => [v.role, v.condition])).toEqual([[bob, 'nologin']]);
    expect(out.actions.map((a) => [a.action, a.pid, a.result])).toEqual([['terminate', s.pid, 'done']]);
    await waitFor(async () => !(await f.alive(s.pid)), 'the session to end');
  });
});

describe('disabled_role memberOf', () => {
  it('the CREATEROLE role that created the marker is not its member (16+: it holds it with ADMIN only)', async () => {
    const f = fixture();
    const dba = await f.createRole(f.name('dba'), 'createrole');
    const marker = f.name('marker');
    const client = new pg.Client(urlFor('postgres', { name: dba, password: ROLE_PASSWORD }));
    await client.connect();
    try {
      await client.query(`create role ${quoteIdent(marker)} nologin`);
    } finally {
      await client.end();
    }
    const leaver = await f.createRole(f.name('leaver'));
    await f.sql(`grant ${quoteIdent(marker)} to ${quoteIdent(leaver)}`);
    const config = writeConfig({ policies: [{ name: 'dr', kind: 'disabled_role', disabledWhen: { memberOf: marker } }] });
    try {
      const { out } = await run(['--config', config, 'plan']);
      const flagged = out.violations.map((v) => v.role).filter((r) => r?.startsWith(f.prefix));
      expect(flagged).toEqual([leaver]);
    } finally {
      await f.sql(`drop role if exists ${quoteIdent(marker)}`);
    }
  });
});

describe('password_expiry', () => {
  it('reports expiring and expired roles with their seconds, exports the expiry gauge, and with nologin disables past the grace', async () => {
    const f = fixture();
    const soon = await f.createRole(f.name('soon'), `valid until '${new Date(Date.now() + 3 * DAY).toISOString()}'`);
    const old = await f.createRole(f.name('old'));
    const recent = await f.createRole(f.name('recent'), `valid until '${new Date(Date.now() - 1 * DAY).toISOString()}'`);
    const forever = await f.createRole(f.name('forever'), "valid until 'infinity'");
    // Connected before its password expired: the expiry does not end the session (nor block trust logins).
    await f.openSession({ role: old, state: 'idle' });
    await f.sql(`alter role ${quoteIdent(old)} valid until '${new Date(Date.now() - 10 * DAY).toISOString()}'`);
    const policy = { name: 'pe', kind: 'password_expiry', match: { roles: [`${f.prefix}_*`] }, warnWithin: '14d', action: 'nologin', grace: '7d' };

    const { out } = await run(['--config', writeConfig({ mode: 'enforce', policies: [policy] }), 'run', '--once']);
    const byRole = new Map(out.violations.map((v) => [v.role, v]));
    expect(byRole.get(soon)).toMatchObject({ condition: 'expiring' });
    expect(byRole.get(soon)!.seconds! / 86_400).toBeCloseTo(3, 1);
    expect(byRole.get(old)).toMatchObject({ condition: 'expired' });
    expect(byRole.get(old)!.reason).toMatch(/only limits password logins/);
    expect(byRole.get(recent)).toMatchObject({ condition: 'expired' });
    expect(byRole.has(forever)).toBe(false);
    expect(out.actions.map((a) => [a.action, a.role, a.result])).toEqual([['nologin', old, 'done']]);
    const { rows } = await f.sql<{ rolname: string; rolcanlogin: boolean }>('select rolname, rolcanlogin from pg_roles where rolname = any($1) order by 1', [[old, recent]]);
    expect(rows.map((r) => [r.rolname, r.rolcanlogin])).toEqual([
      [old, false],
      [recent, true],
    ]);

    // Metrics: seconds until expiry per login role with a finite expiry; infinity is no series.
    const config = loadConfig({}, { PGWARDEN_DATABASE_URL: testDatabaseUrl(), PGWARDEN_POLICIES: JSON.stringify([{ ...policy, action: 'report', grace: undefined }]) });
    const db = testTarget();
    try {
      const metrics = new Metrics();
      const engine = new Engine({ config, targets: [db], metrics, logger: pino({ level: 'silent' }) });
      await engine.runPolicy(db, config.policies[0]!, engine.freshSnapshots(db), 'dry-run');
      const text = await metrics.render();
      const value = (role: string) => Number(new RegExp(`pgwarden_role_valid_until_seconds\\{target="default",role="${role}"\\} (\\S+)`).exec(text)?.[1]);
      expect(value(soon) / 86_400).toBeCloseTo(3, 1);
      expect(value(recent)).toBeLessThan(0);
      expect(text).not.toContain(`role="${forever}"`);
      // old is NOLOGIN since the run above: no longer a login role, so no series and not counted
      expect(text).not.toContain(`role="${old}"`);
      expect(text).toContain('pgwarden_roles_expiring{target="default",policy="pe"} 2');
    } finally {
      await db.end();
    }
  });
});

describe('disabled_role revoke_privileges', () => {
  it('revokes every grant in every database one ACL item at a time, after writing restore SQL that brings them all back', async () => {
    const f = fixture();
    const marker = await f.createRole(f.name('disabled'), 'nologin');
    const leaver = await f.createRole(f.name('leaver'));
    const friend = await f.createRole(f.name('friend'));
    const group = await f.createRole(f.name('group'), 'nologin');
    await f.sql(`grant ${quoteIdent(marker)} to ${quoteIdent(leaver)}`);
    await f.sql(`grant ${quoteIdent(group)} to ${quoteIdent(leaver)}`);
    const one = await f.createDatabase(f.name('one'));
    const two = await f.createDatabase(f.name('two'));
    await f.sql(`grant create on database ${quoteIdent(one)} to ${quoteIdent(leaver)}`);
    for (const database of [one, two]) {
      const client = new pg.Client({ connectionString: urlFor(database) });
      await client.connect();
      await client.query(`create table t (id int); grant select, update on t to ${quoteIdent(leaver)} with grant option;
        set role ${quoteIdent(leaver)}; grant select on t to ${quoteIdent(friend)}; reset role;
        alter default privileges grant insert on tables to ${quoteIdent(leaver)};`);
      await client.end();
    }
    const db = testTarget();
    const { fetchRoleGrants } = await import('../../src/db/grants.js');
    try {
      const before = (await fetchRoleGrants(db, [leaver])).grants.get(leaver)!;
      expect(before.length).toBeGreaterThanOrEqual(9);

      const config = writeConfig({
        mode: 'enforce',
        policies: [{ name: 'dr', kind: 'disabled_role', match: { roles: [leaver] }, disabledWhen: { memberOf: marker }, actions: ['revoke_privileges'] }],
      });
      const { code, out, audit } = await run(['--config', config, 'run', '--once']);
      expect(code).toBe(0);
      const revokes = out.actions.filter((a) => a.action === 'revoke_privileges');
      expect(revokes.every((a) => a.result === 'done')).toBe(true);
      expect(revokes.map((a) => a.database ?? null).filter(Boolean).sort()).toEqual(expect.arrayContaining([one, two]));

      // Nothing is left — privileges, default privileges, memberships, what it handed on — but the
      // membership in the marker role, which is what says the role is disabled.
      const after = (await fetchRoleGrants(db, [leaver])).grants.get(leaver)!;
      expect(after.map((g) => g.membership?.group)).toEqual([marker]);

      // The restore points were written before the revokes, and running them restores everything.
      const restorePoints = audit.filter((a) => a.action === 'restore_point');
      const firstRevoke = audit.findIndex((a) => a.action === 'revoke_privileges');
      expect(audit.findIndex((a) => a.action === 'restore_point')).toBeLessThan(firstRevoke);
      expect(restorePoints.some((a) => a.cascade === true && a.grantee === friend)).toBe(true);
      const cascaded = restorePoints.filter((a) => a.cascade === true);
      for (const point of [...restorePoints.filter((a) => a.cascade !== true), ...cascaded]) {
        const database = point.database as string | null;
        if (database === null) await f.sql(point.restore as string);
        else {
          const client = new pg.Client({ connectionString: urlFor(database) });
          await client.connect();
          await client.query(point.restore as string);
          await client.end();
        }
      }
      expect(restorePoints.some((a) => String(a.restore).includes(`GRANT ${quoteIdent(marker)}`))).toBe(false);
      const restored = (await fetchRoleGrants(db, [leaver])).grants.get(leaver)!;
      const key = (g: (typeof before)[number]) => JSON.stringify([g.database, g.object, g.privileges, g.grantee, g.grantor, g.grantable]);
      expect(restored.map(key).sort()).toEqual(before.map(key).sort());
    } finally {
      await db.end();
    }
  });
});
