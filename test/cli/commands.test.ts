import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selectSessions } from '../../src/cli/sessions.js';
import { quoteIdent } from '../../src/db/quote.js';
import { session } from '../support/sessions.js';
import { cli } from '../support/cli.js';
import { ROLE_PASSWORD, testDatabaseUrl, urlFor, useFixture } from '../support/fixture.js';

const fixture = useFixture('commands');
const db = () => ['--database-url', testDatabaseUrl()];

const SESSION_FIELDS = [
  'target', 'pid', 'role', 'database', 'application', 'clientAddr', 'state', 'backendType', 'backendStart',
  'xactStart', 'queryStart', 'stateChange', 'stateSeconds', 'xactSeconds', 'waitEventType', 'waitEvent', 'query',
];
const ROLE_FIELDS = ['target', 'role', 'login', 'superuser', 'validUntil', 'daysLeft', 'sessions', 'memberOf', 'disabled'];

interface SessionOut {
  pid: number;
  role: string;
  state: string;
  database: string;
  backendStart: string;
  stateSeconds: number;
  query: string;
}

function json<T>(text: string): T {
  return JSON.parse(text) as T;
}

describe('pgwarden sessions', () => {
  it('lists real sessions with the DESIGN.md fields, filtered by role, database and state', async () => {
    const f = fixture();
    const role = await f.createRole(f.name(`Zoë "O'Hara" X`));
    const other = await f.createRole(f.name('other'));
    const database = await f.createDatabase(f.name('db'));
    const idle = await f.openSession({ role, state: 'idle' });
    const inTx = await f.openSession({ role, database, state: 'idle in transaction' });
    const active = await f.openSession({ role: other, state: 'active' });

    const all = await cli([...db(), 'sessions', '--json']);
    expect(all.code).toBe(0);
    const rows = json<Record<string, unknown>[]>(all.stdout);
    expect(rows.length).toBeGreaterThanOrEqual(3);
    for (const row of rows) expect(Object.keys(row).sort()).toEqual([...SESSION_FIELDS].sort());
    expect(rows.every((r) => r.backendType === 'client backend')).toBe(true);

    const mine = json<SessionOut[]>((await cli([...db(), 'sessions', '--json', '--role', role])).stdout);
    expect(mine.map((r) => r.pid).sort()).toEqual([idle.pid, inTx.pid].sort());
    expect(mine.every((r) => r.role === role)).toBe(true);
    expect(new Date(mine[0]!.backendStart).toISOString()).toBe(mine[0]!.backendStart);

    const inDb = json<SessionOut[]>((await cli([...db(), 'sessions', '--json', '--database', database])).stdout);
    // Other test files visit every database, so a stranger's backend may be there too: assert on ours.
    expect(inDb.every((r) => r.database === database)).toBe(true);
    const ours = new Set([idle.pid, inTx.pid, active.pid]);
    expect(inDb.map((r) => r.pid).filter((pid) => ours.has(pid))).toEqual([inTx.pid]);

    const running = json<SessionOut[]>((await cli([...db(), 'sessions', '--json', '--state', 'active', '--role', other])).stdout);
    expect(running.map((r) => r.pid)).toEqual([active.pid]);
    expect(running[0]!.query).toBe('select pg_sleep(300)');

    const table = await cli([...db(), 'sessions', '--role', role]);
    expect(table.stdout).toMatch(/^\s*PID\s+ROLE\s+DATABASE/);
    expect(table.stdout).toContain(String(idle.pid));
    expect(table.stdout).toContain('idle in transaction');
  });

  it("leaves out pgwarden's own backends (by pid) and, without --all, non-client backends", () => {
    const own = session({ pid: 1, application: 'pgwarden' });
    const impostor = session({ pid: 2, application: 'pgwarden' });
    const walsender = session({ pid: 3, backendType: 'walsender' });
    expect(selectSessions([own, impostor, walsender], {}, new Set([1])).map((s) => s.pid)).toEqual([2]);
    expect(selectSessions([own, impostor, walsender], { all: true }, new Set([1])).map((s) => s.pid)).toEqual([2, 3]);
  });

  it('truncates query text to 200 characters', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('long'));
    const session = await f.openSession({ role, state: 'idle' });
    await session.client.query(`select '${'x'.repeat(400)}'`);
    const rows = json<SessionOut[]>((await cli([...db(), 'sessions', '--json', '--role', role])).stdout);
    expect(rows[0]!.query).toHaveLength(200);
  });

  it('refuses an unknown role, database or state with exit 2', async () => {
    const f = fixture();
    const role = await cli([...db(), 'sessions', '--role', f.name('nobody')]);
    expect(role.code).toBe(2);
    expect(role.stderr).toBe(`pgwarden: role "${f.name('nobody')}" does not exist on target default\n`);
    const database = await cli([...db(), 'sessions', '--database', f.name('nodb')]);
    expect(database.code).toBe(2);
    expect(database.stderr).toMatch(/database ".*nodb" does not exist/);
    const state = await cli([...db(), 'sessions', '--state', 'sleeping']);
    expect(state.code).toBe(2);
    expect(state.stderr).toMatch(/--state <state>' argument 'sleeping' is invalid/);
  });
});

describe('pgwarden roles', () => {
  it('shows expiry, days left, sessions, memberships and the disabled condition', async () => {
    const f = fixture();
    const soon = await f.createRole(f.name('Soon Ünï'), `valid until '${new Date(Date.now() + 5.5 * 86_400_000).toISOString()}'`);
    const later = await f.createRole(f.name('later'), `valid until '${new Date(Date.now() + 60 * 86_400_000).toISOString()}'`);
    const expired = await f.createRole(f.name('expired'), "valid until '2001-01-01'");
    const never = await f.createRole(f.name('never'), "valid until '-infinity'");
    const forever = await f.createRole(f.name('forever'), "valid until 'infinity'");
    const limited = await f.createRole(f.name('limited'), 'connection limit 3');
    const marker = await f.createRole(f.name('marker'), 'nologin');
    const leaver = await f.createRole(f.name('leaver'));
    await f.sql(`grant ${quoteIdent(marker)} to ${quoteIdent(leaver)}`);
    await f.openSession({ role: soon, state: 'idle' });

    const dir = mkdtempSync(join(tmpdir(), 'pgwarden-roles-'));
    const config = join(dir, 'c.yaml');
    writeFileSync(config, JSON.stringify({ policies: [{ name: 'd', kind: 'disabled_role', disabledWhen: { memberOf: marker, expired: true } }] }));

    const result = await cli([...db(), '--config', config, 'roles', '--json']);
    rmSync(dir, { recursive: true, force: true });
    expect(result.code).toBe(0);
    const rows = json<Record<string, unknown>[]>(result.stdout);
    for (const row of rows) expect(Object.keys(row).sort()).toEqual([...ROLE_FIELDS].sort());
    expect(rows.some((r) => String(r.role).startsWith('pg_'))).toBe(false);
    const byName = new Map(rows.map((r) => [r.role, r]));
    expect(byName.get(soon)).toMatchObject({ login: true, superuser: false, daysLeft: 5, sessions: 1, memberOf: [], disabled: null });
    expect(byName.get(later)).toMatchObject({ daysLeft: 59, sessions: 0 });
    expect(byName.get(expired)).toMatchObject({ disabled: 'expired' });
    expect(byName.get(expired)!.daysLeft as number).toBeLessThan(-9000);
    expect(byName.get(leaver)).toMatchObject({ memberOf: [marker], disabled: 'memberOf', validUntil: null, daysLeft: null });
    expect(byName.get(marker)).toMatchObject({ login: false, disabled: null }); // the marker itself never is
    // DESIGN.md: -infinity is the string "-infinity" (refused for good, expired everywhere); infinity is null
    expect(byName.get(never)).toMatchObject({ validUntil: '-infinity', daysLeft: null, disabled: 'expired' });
    expect(byName.get(forever)).toMatchObject({ validUntil: null, daysLeft: null, disabled: null });
    expect(byName.get(limited)).toMatchObject({ validUntil: null, login: true });
    expect(byName.get(soon)!.validUntil).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const expiring = json<{ role: string }[]>((await cli([...db(), 'roles', '--json', '--expiring', '14d'])).stdout);
    const names = expiring.map((r) => r.role);
    expect(names).toContain(soon);
    expect(names).toContain(expired);
    expect(names).toContain(never);
    expect(names).not.toContain(forever);
    expect(names).not.toContain(later);
    expect(names).not.toContain(leaver);

    const table = await cli([...db(), 'roles', '--expiring', '14d']);
    expect(table.stdout).toMatch(/^ROLE\s+LOGIN\s+SUPERUSER\s+VALID UNTIL\s+DAYS LEFT\s+SESSIONS/);
    expect(table.stdout).toContain(soon);

    const bad = await cli([...db(), 'roles', '--expiring', 'two weeks']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('pgwarden: --expiring: "two weeks" is not a duration (e.g. 14d)\n');
  });
});

describe('pgwarden owned', () => {
  it('finds every kind of object a role owns in two databases, and the databases it owns', async () => {
    const f = fixture();
    const owner = await f.createRole(f.name(`Ow"ner Ünï`));
    const one = await f.createDatabase(f.name('one'));
    const two = await f.createDatabase(f.name('two Space'), owner);
    const o = quoteIdent(owner);
    const { Client } = (await import('pg')).default;
    for (const [database, sql] of [
      [
        one,
        `create schema s authorization ${o};
         set role ${o};
         create table s.t (id int primary key);
         create table s.p (id int) partition by range (id);
         create view s.v as select 1 as x;
         create materialized view s.mv as select 1 as x;
         create sequence s.seq;
         create function s.f(a int, b text) returns int language sql as 'select 1';
         create procedure s.pr() language sql as 'select 1';
         create aggregate s.agg(int) (sfunc = int4pl, stype = int);
         create type s.mood as enum ('ok');
         create type s.pair as (a int, b int);
         create domain s.posint as int check (value > 0);
         create type s.r as range (subtype = float8);
         reset role;`,
      ],
      [two, `create table public."Mixed Table" (x int); alter table public."Mixed Table" owner to ${o}; create extension if not exists postgres_fdw; `],
    ] as const) {
      const client = new Client({ connectionString: urlFor(database) });
      await client.connect();
      try {
        await client.query(sql);
        if (database === two) {
          await client.query(`create server ${quoteIdent(f.name('srv'))} foreign data wrapper postgres_fdw`);
          await client.query(`create foreign table public.ft (x int) server ${quoteIdent(f.name('srv'))}`);
          await client.query(`alter foreign table public.ft owner to ${o}`);
        }
      } finally {
        await client.end();
      }
    }

    const result = await cli([...db(), 'owned', owner, '--json']);
    const version = (await f.sql<{ v: number }>("select current_setting('server_version_num')::int as v")).rows[0]!.v;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const rows = json<{ database: string; type: string; schema: string | null; name: string }[]>(result.stdout);
    for (const row of rows) expect(Object.keys(row).sort()).toEqual(['database', 'name', 'schema', 'type']);
    const got = rows.map((r) => `${r.database}|${r.type}|${r.schema ?? ''}|${r.name}`).sort();
    expect(got).toEqual(
      [
        // named as pg_identify_object names them (DESIGN.md): quoted where needed, routines by identity
        `${two}|database||${quoteIdent(two)}`,
        `${one}|schema||s`,
        `${one}|table|s|t`,
        `${one}|table|s|p`,
        `${one}|view|s|v`,
        `${one}|materialized view|s|mv`,
        `${one}|sequence|s|seq`,
        `${one}|function|s|s.f(integer,pg_catalog.text)`,
        `${one}|procedure|s|s.pr()`,
        `${one}|aggregate|s|s.agg(integer)`,
        `${one}|type|s|mood`,
        `${one}|type|s|pair`,
        `${one}|type|s|posint`,
        `${one}|type|s|r`,
        // before 17 a range's multirange type had an owner entry of its own
        ...(version < 170000 ? [`${one}|type|s|r_multirange`] : []),
        `${two}|table|public|"Mixed Table"`,
        `${two}|foreign table|public|ft`,
      ].sort(),
    );

    const table = await cli([...db(), 'owned', owner]);
    expect(table.stdout).toMatch(/^DATABASE\s+TYPE\s+SCHEMA\s+NAME/);
    expect(table.stdout).toContain('materialized view');
  });

  it('enters only the databases that hold something of the role; one it cannot enter is an entry with its count, exit 1', async () => {
    const f = fixture();
    const viewer = await f.createRole(f.name('viewer'));
    const open = await f.createDatabase(f.name('open'));
    const closed = await f.createDatabase(f.name('closed'));
    const empty = await f.createDatabase(f.name('empty'));
    for (const [database, tables] of [[open, 1], [closed, 2]] as const) {
      const client = new (await import('pg')).default.Client({ connectionString: urlFor(database) });
      await client.connect();
      try {
        for (let i = 0; i < tables; i++) await client.query(`create table t${i} (x int); alter table t${i} owner to ${quoteIdent(viewer)}`);
      } finally {
        await client.end();
      }
    }
    for (const database of [closed, empty]) await f.sql(`revoke connect on database ${quoteIdent(database)} from public`);
    const result = await cli(['--database-url', urlFor('postgres', { name: viewer, password: ROLE_PASSWORD }), 'owned', viewer, '--json']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`pgwarden: database "${closed}" holds 2 of "${viewer}"'s entries but was not entered: pgwarden's role has no CONNECT privilege on it\n`);
    // a database that holds nothing of the role is never entered, whatever its rights
    expect(result.stderr).not.toContain(empty);
    expect(json<unknown[]>(result.stdout)).toEqual([
      { database: open, type: 'table', schema: 'public', name: 't0' },
      { database: closed, type: 'unvisited', schema: null, name: null, objects: 2, reason: "pgwarden's role has no CONNECT privilege on it" },
    ]);
  });

  it('refuses an unknown role with exit 2', async () => {
    const f = fixture();
    const result = await cli([...db(), 'owned', f.name('ghost')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^pgwarden: role ".*ghost" does not exist/);
  });
});
