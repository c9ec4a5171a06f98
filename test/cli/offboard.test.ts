/** `pgwarden offboard` against the real server, across two databases. */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { quoteIdent } from '../../src/db/quote.js';
import { cli } from '../support/cli.js';
import { testDatabaseUrl, urlFor, useFixture, waitFor, type Fixture } from '../support/fixture.js';

const fixture = useFixture('offboard');
const base = () => ['--database-url', testDatabaseUrl(), '--json'];

interface Out {
  actions: { action: string; database?: string; pid?: number; result: string; detail?: string }[];
  databases: Record<string, string>;
  owned: { database: string; type: string; schema: string | null; name: string }[];
}

async function inDatabase(database: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: urlFor(database) });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function ownersIn(database: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: urlFor(database) });
  await client.connect();
  try {
    const { rows } = await client.query<{ o: string }>(
      `select distinct pg_get_userbyid(relowner)::text as o from pg_class where relnamespace in (select oid from pg_namespace where nspname in ('s', 'public')) and relkind in ('r','v','S')
       union select pg_get_userbyid(proowner)::text from pg_proc where pronamespace = (select oid from pg_namespace where nspname = 's')
       union select pg_get_userbyid(nspowner)::text from pg_namespace where nspname = 's'`,
    );
    return rows.map((r) => r.o).sort();
  } finally {
    await client.end();
  }
}

async function setUp(f: Fixture) {
  const leaver = await f.createRole(f.name(`Le"aver Ü`));
  const heir = await f.createRole(f.name('heir'));
  const reader = await f.createRole(f.name('reader'));
  const one = await f.createDatabase(f.name('one'));
  const two = await f.createDatabase(f.name('two'), leaver);
  const l = quoteIdent(leaver);
  for (const database of [one, two]) {
    await inDatabase(
      database,
      `create schema s authorization ${l};
       set role ${l};
       create table s.t (id int);
       create view s.v as select 1 as x;
       create sequence s.q;
       create function s.f() returns int language sql as 'select 1';
       grant select on s.t to ${quoteIdent(reader)};
       reset role;
       create table public.shared (id int);
       grant select on public.shared to ${l};`,
    );
  }
  return { leaver, heir, reader, one, two };
}

describe('pgwarden offboard', () => {
  it('moves everything ROLE owns in every database to NEW, ends its sessions, records grants, and drops it', async () => {
    const f = fixture();
    const { leaver, heir, one, two } = await setUp(f);
    const session = await f.openSession({ role: leaver, database: one, state: 'idle in transaction' });

    const result = await cli([...base(), 'offboard', leaver, '--reassign-to', heir, '--drop', '--yes']);
    const out = JSON.parse(result.stdout) as Out;
    expect(result.stderr.split('\n').filter((l) => l.includes('"action failed"'))).toEqual([]);
    expect(result.code).toBe(0);
    expect(out.databases[one]).toBe('done');
    expect(out.databases[two]).toBe('done');
    expect(out.actions.map((a) => a.action).slice(0, 2)).toEqual(['nologin', 'terminate']);
    expect(out.actions.at(-1)).toMatchObject({ action: 'drop_role', result: 'done' });
    // (another test's database dropped meanwhile is `gone`; ours must all be done)
    expect(out.actions.every((a) => a.result === 'done' || (a.result === 'gone' && a.database !== one && a.database !== two))).toBe(true);
    // what it owned was shown first: both databases, the database it owned included
    expect(out.owned.filter((o) => o.type === 'table').map((o) => o.database).sort()).toEqual([one, two].sort());
    expect(out.owned).toContainEqual({ database: two, type: 'database', schema: null, name: two });

    await waitFor(async () => !(await f.alive(session.pid)), 'the session to end');
    expect(await ownersIn(one)).toEqual([heir, 'postgres'].sort());
    expect(await ownersIn(two)).toEqual([heir, 'postgres'].sort());
    const { rows } = await f.sql<{ owner: string }>('select pg_get_userbyid(datdba)::text as owner from pg_database where datname = $1', [two]);
    expect(rows[0]?.owner).toBe(heir);
    const gone = await f.sql('select 1 from pg_roles where rolname = $1', [leaver]);
    expect(gone.rowCount).toBe(0);

    // grants held and handed on were written to the audit log as restore SQL, one line each
    const restores = result.stderr
      .split('\n')
      .filter((l) => l.includes('"restore_point"'))
      .map((l) => (JSON.parse(l) as { restore: string }).restore);
    expect(restores).toContainEqual(`BEGIN; SET LOCAL ROLE "postgres"; GRANT SELECT ON TABLE public.shared TO ${quoteIdent(leaver)}; COMMIT`);
    expect(restores.some((r) => r.includes('GRANT SELECT ON TABLE s.t TO') && r.includes(`SET LOCAL ROLE ${quoteIdent(leaver)}`))).toBe(true);
  });

  it('stops before DROP ROLE when a database fails, keeps the role NOLOGIN, and a re-run finishes', async () => {
    const f = fixture();
    const { leaver, heir, one, two } = await setUp(f);
    // Someone holds a lock on a table the leaver owns in `two`: REASSIGN OWNED there times out.
    const blocker = new pg.Client({ connectionString: urlFor(two) });
    await blocker.connect();
    await blocker.query('begin');
    await blocker.query('lock table s.t in access share mode');
    try {
      const env = { PGWARDEN_DATABASE_LOCK_TIMEOUT: '100ms' };
      const first = await cli([...base(), 'offboard', leaver, '--reassign-to', heir, '--drop', '--yes'], env);
      expect(first.code).toBe(1);
      const out = JSON.parse(first.stdout) as Out;
      expect(out.databases[one]).toBe('done');
      expect(out.databases[two]).toBe('failed');
      expect(out.actions.find((a) => a.action === 'reassign_owned' && a.database === two)?.detail).toMatch(/lock timeout/);
      expect(out.actions.find((a) => a.action === 'drop_role')).toMatchObject({ result: 'skipped' });
      const { rows } = await f.sql<{ rolcanlogin: boolean }>('select rolcanlogin from pg_roles where rolname = $1', [leaver]);
      expect(rows[0]?.rolcanlogin).toBe(false);
    } finally {
      await blocker.query('rollback');
      await blocker.end();
    }
    const second = await cli([...base(), 'offboard', leaver, '--reassign-to', heir, '--drop', '--yes']);
    expect(second.code).toBe(0);
    const out = JSON.parse(second.stdout) as Out;
    expect(Object.values(out.databases).every((s) => s === 'done')).toBe(true);
    expect((await f.sql('select 1 from pg_roles where rolname = $1', [leaver])).rowCount).toBe(0);
    expect(await ownersIn(two)).toEqual([heir, 'postgres'].sort());
  });

  it('refuses, exit 2 and nothing done: unknown NEW, NEW = ROLE, a superuser without --force, no terminal', async () => {
    const f = fixture();
    const leaver = await f.createRole(f.name('leaver'));
    const boss = await f.createRole(f.name('boss'), 'superuser');
    const heir = await f.createRole(f.name('heir'));
    const cases: [string[], RegExp][] = [
      [['offboard', leaver, '--reassign-to', f.name('ghost'), '--yes'], /--reassign-to: role ".*ghost" does not exist/],
      [['offboard', leaver, '--reassign-to', leaver, '--yes'], /another role/],
      [['offboard', boss, '--reassign-to', heir, '--yes'], /is a superuser: pass --force/],
      [['offboard', leaver, '--reassign-to', heir], /refusing to act without a terminal/],
      [['offboard', leaver], /required option '--reassign-to/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(['--database-url', testDatabaseUrl(), ...args]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    const { rows } = await f.sql<{ rolcanlogin: boolean }>('select rolcanlogin from pg_roles where rolname = $1', [leaver]);
    expect(rows[0]?.rolcanlogin).toBe(true);

    // A role that holds nothing anywhere (pg_shdepend) needs no REASSIGN in any database: DROP ROLE only.
    const dry = await cli(['--database-url', testDatabaseUrl(), 'offboard', leaver, '--reassign-to', heir, '--drop', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).not.toContain('reassign owned');
    expect(dry.stdout).toContain(`drop role ${quoteIdent(leaver)}`);
  });
});
