import { afterEach, describe, expect, it } from 'vitest';
import { countLogins, eachLoginExpiry, fetchRoles, fetchSessions, membersOf, type FetchedRoles, type RoleColumns, type RoleRows } from '../../src/db/snapshot.js';
import { quoteIdent } from '../../src/db/quote.js';
import type { TargetDb } from '../../src/db/pool.js';
import { testDatabaseUrl, useFixture } from '../support/fixture.js';
import { testTarget } from '../support/target.js';

const fixture = useFixture('snapshot');
let db: TargetDb | undefined;
afterEach(async () => {
  await db?.end();
  db = undefined;
});

describe('fetchSessions', () => {
  it('runs on the expected server version', async () => {
    db = testTarget();
    const snapshot = await fetchSessions(db);
    expect(snapshot.serverVersionNum).toBeGreaterThanOrEqual(140000);
    const expected = process.env.PGWARDEN_TEST_EXPECT_MAJOR;
    if (expected) expect(Math.floor(snapshot.serverVersionNum / 10000)).toBe(Number(expected));
  });

  it('says who pgwarden is and what it may see and signal, as the server decides', async () => {
    const f = fixture();
    const { rows } = await f.sql<{ me: string; boot: string }>('select current_user as me, (select rolname from pg_roles where oid = 10) as boot');
    db = testTarget();
    const snapshot = await fetchSessions(db);
    expect(snapshot.self).toEqual({ role: rows[0]!.me, currentRole: rows[0]!.me, bootstrapRole: rows[0]!.boot, superuser: true, readAllStats: true, signalBackend: true });
    expect(snapshot.clockUs).toBeGreaterThan(0);
    const clients = snapshot.sessions.filter((s) => s.backendType === 'client backend');
    expect(clients.length).toBeGreaterThan(0);
    expect(clients.every((s) => s.signallable && !s.hidden)).toBe(true);
    // the role snapshot says the same, on the bootstrap superuser's row alone
    expect((await fetchRoles(db)).self).toEqual({ role: rows[0]!.me, currentRole: rows[0]!.me, bootstrapRole: rows[0]!.boot, superuser: true });
  });

  it('shows real idle, idle-in-transaction, aborted and active sessions with server-clock ages', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('app'));
    const idle = await f.openSession({ role, state: 'idle', application: `${f.prefix}-idle` });
    const inTx = await f.openSession({ role, state: 'idle in transaction' });
    const aborted = await f.openSession({ role, state: 'idle in transaction (aborted)' });
    const active = await f.openSession({ role, state: 'active' });
    // The three ages asserted below, each past 1 s by the server's clock.
    await f.waitForAge([idle.pid], 1, 'state_change');
    await f.waitForAge([inTx.pid], 1, 'xact_start');
    await f.waitForAge([active.pid], 1, 'query_start');

    db = testTarget();
    const snapshot = await fetchSessions(db);
    const byPid = new Map(snapshot.sessions.map((s) => [s.pid, s]));
    const s = (pid: number) => {
      const found = byPid.get(pid);
      expect(found, `pid ${pid} in snapshot`).toBeDefined();
      return found!;
    };
    expect(s(idle.pid)).toMatchObject({ state: 'idle', role, backendType: 'client backend', application: `${f.prefix}-idle`, superuser: false });
    expect(s(idle.pid).xactStart).toBeNull();
    expect(s(idle.pid).stateSeconds).toBeGreaterThan(1);
    expect(s(inTx.pid).state).toBe('idle in transaction');
    expect(s(inTx.pid).xactSeconds).toBeGreaterThan(1);
    expect(s(aborted.pid).state).toBe('idle in transaction (aborted)');
    expect(s(active.pid)).toMatchObject({ state: 'active', waitEventType: 'Timeout', waitEvent: 'PgSleep' });
    expect(s(active.pid).query).toBe('select pg_sleep(300)');
    expect(s(active.pid).querySeconds).toBeGreaterThan(1);
    // TCP sessions carry their client address; the database is the connection database.
    expect(s(idle.pid).clientAddr).toBe('127.0.0.1');

    // backend_start to the microsecond, as the server has it
    const { rows } = await f.sql(`select (extract(epoch from backend_start) * 1000000)::bigint::text as us from pg_stat_activity where pid = $1`, [idle.pid]);
    expect(s(idle.pid).backendStartUs).toBe(rows[0]?.us);
    expect(s(idle.pid).backendStartUs).toMatch(/^\d{16}$/);

    // Non-client backends are in the snapshot too (policies filter them out).
    expect(snapshot.sessions.some((x) => x.backendType !== 'client backend')).toBe(true);
    // The pool's own backend is known by pid.
    expect(db.ownPids.size).toBeGreaterThan(0);
    for (const pid of db.ownPids) expect(s(pid).application).toBe('pgwarden');
  });

  it('connects with application_name=pgwarden and a statement timeout', async () => {
    db = testTarget();
    const { rows } = await db.query<{ app: string; timeout: string }>(
      "select current_setting('application_name') as app, current_setting('statement_timeout') as timeout",
    );
    expect(rows[0]).toEqual({ app: 'pgwarden', timeout: '10s' });
  });
});

describe('fetchRoles', () => {
  it('reports expiry, infinity as none, -infinity as refused for good, far dates capped, memberships (inherited through groups) and session counts', async () => {
    const f = fixture();
    const soon = await f.createRole(f.name('soon'), "valid until '2999-01-01'");
    await f.sql(`alter role ${quoteIdent(soon)} valid until ${"'" + new Date(Date.now() + 3 * 86_400_000).toISOString() + "'"}`);
    const past = await f.createRole(f.name('past'), "valid until '2001-01-01'");
    const forever = await f.createRole(f.name('forever'), "valid until 'infinity'");
    const lockedForGood = await f.createRole(f.name('never'), "valid until '-infinity'");
    // near PostgreSQL's last timestamp: beyond int8 microseconds and JavaScript's Date
    const farFuture = await f.createRole(f.name('far'), "valid until '294250-01-01 00:00:00+00'");
    const marker = await f.createRole(f.name('marker'), 'nologin');
    const group = await f.createRole(f.name('group'), 'nologin');
    await f.sql(`grant ${quoteIdent(marker)} to ${quoteIdent(group)}`);
    await f.sql(`grant ${quoteIdent(group)} to ${quoteIdent(forever)}`);
    await f.openSession({ role: forever, state: 'idle' });
    await f.openSession({ role: forever, state: 'idle in transaction' });

    // The same from a session whose bytea_output is 'escape' (as a legacy application may set
    // for its database or role): the expiries come as bytes, which must not depend on it.
    const escapeUrl = new URL(testDatabaseUrl());
    escapeUrl.searchParams.set('options', '-c bytea_output=escape');
    for (const url of [testDatabaseUrl(), escapeUrl.toString()]) {
      await db?.end();
      db = testTarget('default', url);
      if (url !== testDatabaseUrl()) expect((await db.query<{ b: string }>("select current_setting('bytea_output') as b")).rows[0]?.b).toBe('escape');
      const { roles } = await fetchRoles(db);
      const byName = new Map(Array.from(roles).map((r) => [r.role, r]));
      const r = (name: string) => byName.get(name)!;
      expect(r(soon).validSeconds).toBeGreaterThan(2.9 * 86_400);
      expect(r(soon).validSeconds).toBeLessThan(3.1 * 86_400);
      expect(r(soon).validUntil).toBeInstanceOf(Date);
      expect(r(past).validSeconds).toBeLessThan(0);
      expect(r(forever)).toMatchObject({ validUntil: null, validSeconds: null, login: true, superuser: false, sessions: 2 });
      expect(r(forever).memberOf).toEqual([group]);
      expect(r(lockedForGood)).toMatchObject({ validUntil: null, validSeconds: -Infinity });
      expect(r(farFuture).validUntil?.toISOString()).toBe('+275760-09-13T00:00:00.000Z');
      expect(r(farFuture).validSeconds).toBeGreaterThan(8e12);
      expect(r(marker).login).toBe(false);
      expect(membersOf(roles, marker)).toEqual(new Set([group, forever]));
      expect(r(soon).sessions).toBe(0);

      // The walks that read the columns of the table say what walking its roles says.
      const walked = Array.from(roles);
      const expiries = (rows: RoleRows) => {
        const out: [string, number][] = [];
        eachLoginExpiry(rows, (role, seconds) => out.push([role, seconds]));
        return out;
      };
      expect(countLogins(roles)).toBe(walked.filter((x) => x.login).length);
      expect(countLogins(roles)).toBe(countLogins(walked));
      expect(expiries(roles)).toEqual(expiries(walked));
      expect(expiries(roles).map(([role]) => role)).toEqual(expect.arrayContaining([soon, past, farFuture]));
      expect(expiries(roles).map(([role]) => role)).not.toContain(forever);
      expect(expiries(roles).map(([role]) => role)).not.toContain(lockedForGood);
      expect(membersOf(walked, marker)).toEqual(membersOf(roles, marker));
    }
  });

  it('sends the role columns again only when a role changed; sessions and the clock at every read', async () => {
    const f = fixture();
    const app = await f.createRole(f.name('app'), "valid until '2999-01-01'");
    const group = await f.createRole(f.name('grp'), 'nologin');
    db = testTarget();
    const target = db;
    const roleIn = (snapshot: FetchedRoles, name: string) => Array.from(snapshot.roles).find((r) => r.role === name);

    // Tests of other files create roles meanwhile (two at a time): read until two reads agree.
    let previous = (await fetchRoles(target)).roles.columns;
    let reused: FetchedRoles | undefined;
    for (let i = 0; i < 20 && reused === undefined; i++) {
      const next = await fetchRoles(target, previous);
      if (next.roles.columns === previous) reused = next;
      else previous = next.roles.columns;
    }
    expect(reused, 'no two reads in 20 found the roles unchanged').toBeDefined();
    expect(roleIn(reused!, app)).toMatchObject({ login: true, sessions: 0, memberOf: [] });

    // what changes every tick comes with the kept columns
    await f.openSession({ role: app, state: 'idle' });
    const withSession = await fetchRoles(target, previous);
    expect(roleIn(withSession, app)?.sessions).toBe(1);

    // every kind of change to a role is sent again, and seen
    const changes: [string, (r: ReturnType<typeof roleIn>) => void][] = [
      [`alter role ${quoteIdent(app)} valid until '2001-01-01'`, (r) => expect(r?.validSeconds).toBeLessThan(0)],
      [`grant ${quoteIdent(group)} to ${quoteIdent(app)}`, (r) => expect(r?.memberOf).toEqual([group])],
      [`alter role ${quoteIdent(app)} connection limit 3`, (r) => expect(r?.connLimit).toBe(3)],
      [`alter role ${quoteIdent(app)} nologin`, (r) => expect(r?.login).toBe(false)],
    ];
    for (const [statement, check] of changes) {
      const before = (await fetchRoles(target)).roles.columns;
      await f.sql(statement);
      const after = await fetchRoles(target, before);
      expect(after.roles.columns, statement).not.toBe(before);
      expect(after.roles.columns.digest, statement).not.toBe(before.digest);
      check(roleIn(after, app));
    }
    const created = f.name('new');
    const before = (await fetchRoles(target)).roles.columns;
    await f.createRole(created);
    expect(roleIn(await fetchRoles(target, before), created)).toBeDefined();

    // columns that are not the server's (another server's, say) are never used: all is sent
    const foreign = { ...before, digest: '00' } as unknown as RoleColumns;
    const whole = await fetchRoles(target, foreign);
    expect(whole.roles.columns).not.toBe(foreign);
    expect(roleIn(whole, created)).toBeDefined();
  });

  it('gives back hostile names exactly: quotes, spaces, capitals, non-ASCII past the BMP, control characters, 63 bytes', async () => {
    const f = fixture();
    const suffixes = [`it's`, `say "hi"`, `Mixed Case`, `Zoë 日本 🐘`, 'tab\there', 'new\nline', 'back\\slash'];
    const names = suffixes.map((x, i) => f.name(`${i}${x}`));
    // PostgreSQL's NAMEDATALEN: 63 bytes, here of two-byte characters (a prefix, then "é"s)
    const long = f.name('');
    names.push(long + 'é'.repeat(Math.floor((63 - Buffer.byteLength(long)) / 2)));
    expect(Buffer.byteLength(names.at(-1)!)).toBeGreaterThanOrEqual(62);
    const group = await f.createRole(f.name('grp'), 'nologin');
    for (const name of names) await f.createRole(name, "valid until '2999-01-01'");
    await f.sql(`grant ${quoteIdent(group)} to ${quoteIdent(names[3]!)}`);
    await f.openSession({ role: names[4]!, state: 'idle' });
    db = testTarget();
    const { roles } = await fetchRoles(db);
    const byName = new Map(Array.from(roles).map((r) => [r.role, r]));
    for (const name of names) expect(byName.has(name), JSON.stringify(name)).toBe(true);
    expect(byName.get(names[3]!)?.memberOf).toEqual([group]);
    expect(byName.get(names[4]!)?.sessions).toBe(1);
    expect(membersOf(roles, group)).toEqual(new Set([names[3]]));
    const expiring: string[] = [];
    eachLoginExpiry(roles, (role) => expiring.push(role));
    expect(expiring).toEqual(expect.arrayContaining(names));
  });
});
