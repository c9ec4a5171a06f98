/** `pgwarden revoke` against the real server: round trips through the restore SQL, scopes, blockers, refusals. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { inScope, schemaOf } from '../../src/actions/revoke.js';
import type { Grant } from '../../src/db/grants.js';
import { runCli } from '../../src/cli/program.js';
import { quoteIdent } from '../../src/db/quote.js';
import { cli } from '../support/cli.js';
import { testDatabaseUrl, urlFor, useFixture, type Fixture } from '../support/fixture.js';
import { createBareRole, createCloudAdmin, serverVersionNum, type TestLogin } from '../support/roles.js';

const fixture = useFixture('revoke');
const base = () => ['--database-url', testDatabaseUrl(), '--json'];

interface Action {
  action: string;
  role: string;
  database?: string;
  sql: string;
  result: string;
  detail?: string;
}
interface Blocker {
  kind: string;
  database?: string;
  object?: string;
  detail: string;
  fix: string | null;
}
interface Out {
  actions: Action[];
  restore?: { database: string | null; sql: string }[];
  blockers?: Blocker[];
}

/** Runs `sql` (one simple query, several statements allowed) in `database`, as the superuser or `as`. */
async function inDatabase<R extends pg.QueryResultRow = Record<string, unknown>>(database: string, sql: string, as?: TestLogin, values?: unknown[]): Promise<R[]> {
  const client = new pg.Client({ connectionString: as ? as.url(database) : urlFor(database) });
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Every ACL item of `database` (objects of every kind with an ACL, default privileges) and of
 * the shared objects the test made (its databases; parameters granted to its roles), one
 * sortable line each.
 */
async function aclsOf(f: Fixture, database: string, databases: readonly string[]): Promise<string[]> {
  const parameters =
    (await serverVersionNum(f)) >= 150000 ? `union all select 'parameter', parname::text, paracl from pg_parameter_acl` : '';
  const rows = await inDatabase<{ line: string }>(
    database,
    `select concat_ws(' | ', o.kind, o.obj, coalesce(gr.rolname::text, a.grantor::text), case when a.grantee = 0 then 'PUBLIC' else coalesce(ge.rolname::text, a.grantee::text) end,
                      a.privilege_type, a.is_grantable::text) as line
     from (
       select 'class' as kind, oid::regclass::text as obj, relacl as acl from pg_class where relacl is not null
       union all select 'column', attrelid::regclass::text || '.' || quote_ident(attname), attacl from pg_attribute where attacl is not null
       union all select 'routine', oid::regprocedure::text, proacl from pg_proc where proacl is not null
       union all select 'schema', quote_ident(nspname), nspacl from pg_namespace where nspacl is not null
       union all select 'type', oid::regtype::text, typacl from pg_type where typacl is not null
       union all select 'large object', oid::text, lomacl from pg_largeobject_metadata where lomacl is not null
       union all select 'default', defaclrole::regrole::text || ' ' || coalesce(defaclnamespace::regnamespace::text, '-') || ' ' || defaclobjtype::text, defaclacl from pg_default_acl
       union all select 'language', lanname::text, lanacl from pg_language where lanacl is not null
       union all select 'fdw', fdwname::text, fdwacl from pg_foreign_data_wrapper where fdwacl is not null
       union all select 'server', srvname::text, srvacl from pg_foreign_server where srvacl is not null
       union all select 'database', datname::text, datacl from pg_database where datname = any($1::text[])
       ${parameters}
     ) o
     cross join aclexplode(o.acl) a
     left join pg_roles gr on gr.oid = a.grantor
     left join pg_roles ge on ge.oid = a.grantee
     where o.kind not in ('parameter') or ge.rolname like $2`,
    undefined,
    [databases, `${f.prefix}%`],
  );
  return rows.map((r) => r.line).sort();
}

/** The ACL entries pg_shdepend records of `role` (deptype a), in every database: 0 when it holds and gave nothing. */
async function aclEntries(f: Fixture, role: string): Promise<number> {
  const { rows } = await f.sql<{ n: string }>(
    `select count(*) as n from pg_shdepend where refclassid = 'pg_authid'::regclass and deptype = 'a' and refobjid = (select oid from pg_roles where rolname = $1)`,
    [role],
  );
  return Number(rows[0]?.n);
}

/** The superuser the fixture connects as: the grantor of what it grants on what it creates. */
async function superuserOf(f: Fixture): Promise<string> {
  return (await f.sql<{ u: string }>('select current_user::text as u')).rows[0]?.u ?? '';
}

/** Replays restore SQL as the superuser, each statement in its database. */
async function replay(restore: readonly { database: string | null; sql: string }[]): Promise<void> {
  for (const r of restore) await inDatabase(r.database ?? 'postgres', r.sql);
}

/**
 * A database where `role` holds one of everything, from two grantors (the superuser and
 * `grantor`): schema, table, one column, sequence, function, procedure, type, domain, language,
 * foreign-data wrapper and server, default privileges, a large object, the database itself
 * (PUBLIC's defaults revoked, so that has_*_privilege tells what the role holds).
 */
async function grantEverything(f: Fixture, database: string, role: string, grantor: string): Promise<void> {
  const [r, g, d] = [quoteIdent(role), quoteIdent(grantor), quoteIdent(database)];
  await f.sql(`revoke all on database ${d} from public`);
  await f.sql(`grant connect, temporary on database ${d} to ${r}`);
  await f.sql(`grant connect on database ${d} to ${g} with grant option`);
  await inDatabase(
    database,
    `create schema s;
     create table s.t (a int, b int);
     create sequence s.q;
     create function s.f() returns int language sql as 'select 1';
     revoke execute on function s.f() from public;
     grant usage on schema s to ${r};
     grant select on s.t to ${r};
     grant update (b) on s.t to ${r};
     grant usage on sequence s.q to ${r};
     grant execute on function s.f() to ${r};
     alter default privileges in schema s grant select on tables to ${r};
     create type s.e as enum ('x');
     create domain s.d as int;
     create procedure s.p() language sql as 'select 1';
     revoke usage on type s.e from public;
     revoke usage on domain s.d from public;
     revoke execute on procedure s.p() from public;
     revoke usage on language sql from public;
     create foreign data wrapper w;
     create server srv foreign data wrapper w;
     grant usage on type s.e to ${r};
     grant usage on domain s.d to ${r};
     grant execute on procedure s.p() to ${r};
     grant usage on language sql to ${r};
     grant usage on foreign data wrapper w to ${r};
     grant usage on foreign server srv to ${r};
     grant usage on schema s to ${g};
     grant select on s.t to ${g} with grant option;
     grant usage on sequence s.q to ${g} with grant option;
     alter default privileges for role ${g} in schema s grant select on sequences to ${r};
     set role ${g};
     grant connect on database ${d} to ${r};
     grant select on s.t to ${r};
     grant usage on sequence s.q to ${r};
     reset role;`,
  );
  const [lo] = await inDatabase<{ lo: number }>(database, 'select lo_create(0) as lo');
  await inDatabase(database, `grant select on large object ${lo?.lo} to ${r}`);
}

/** The privileges `role` has in `database` on what grantEverything made (true where any is left). */
async function privilegesLeft(database: string, role: string): Promise<Record<string, boolean>> {
  const [row] = await inDatabase<Record<string, boolean>>(
    database,
    `select has_schema_privilege($1, 's', 'USAGE') as schema,
            has_table_privilege($1, 's.t', 'SELECT') as "table",
            has_column_privilege($1, 's.t', 'b', 'UPDATE') as "column",
            has_sequence_privilege($1, 's.q', 'USAGE') as sequence,
            has_function_privilege($1, 's.f()', 'EXECUTE') as function,
            has_function_privilege($1, 's.p()', 'EXECUTE') as procedure,
            has_type_privilege($1, 's.e', 'USAGE') as type,
            has_type_privilege($1, 's.d', 'USAGE') as domain,
            has_language_privilege($1, 'sql', 'USAGE') as language,
            has_foreign_data_wrapper_privilege($1, 'w', 'USAGE') as fdw,
            has_server_privilege($1, 'srv', 'USAGE') as server,
            has_database_privilege($1, current_database(), 'CONNECT') as connect,
            has_database_privilege($1, current_database(), 'TEMPORARY') as temporary,
            exists (select 1 from pg_largeobject_metadata m cross join aclexplode(m.lomacl) a where a.grantee = $1::regrole) as large_object,
            exists (select 1 from pg_default_acl d cross join aclexplode(d.defaclacl) a where a.grantee = $1::regrole) as defaults`,
    undefined,
    [role],
  );
  return row ?? {};
}

const NONE = {
  schema: false, table: false, column: false, sequence: false, function: false, procedure: false, type: false, domain: false,
  language: false, fdw: false, server: false, connect: false, temporary: false, large_object: false, defaults: false,
};

describe('pgwarden revoke', () => {
  it('revokes every privilege in every database as its grantors, and the restore SQL brings back exactly the same ACLs', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('leaver'));
    const grantor = await f.createRole(f.name('lead'));
    const heir = await f.createRole(f.name('heir'));
    const one = await f.createDatabase(f.name('one'));
    const two = await f.createDatabase(f.name('two'));
    for (const d of [one, two]) await grantEverything(f, d, role, grantor);
    // One it handed on with the grant option: it cascades away with its own, and comes back after it.
    await inDatabase(one, `create table s.passed (x int); grant select on s.passed to ${quoteIdent(role)} with grant option;
                           set role ${quoteIdent(role)}; grant select on s.passed to ${quoteIdent(heir)}; reset role`);
    const v15 = (await serverVersionNum(f)) >= 150000;
    if (v15) await f.sql(`grant set on parameter work_mem to ${quoteIdent(role)}`);

    const before = { one: await aclsOf(f, one, [one, two]), two: await aclsOf(f, two, [one, two]) };
    expect(before.one.filter((l) => l.includes(role)).length).toBeGreaterThan(10);

    const result = await cli([...base(), 'revoke', role, '--yes']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as Out;
    expect(out.actions.length).toBeGreaterThan(10);
    expect(out.actions.every((a) => a.action === 'revoke_privileges' && a.result === 'done')).toBe(true);
    // As each grantor: the superuser's and the other role's items are separate REVOKEs.
    expect(out.actions.filter((a) => a.database === one && a.sql.includes(`SET LOCAL ROLE ${quoteIdent(grantor)}`)).map((a) => a.sql)).toHaveLength(2);
    expect(out.actions.some((a) => a.sql.startsWith(`ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(grantor)}`))).toBe(true);
    if (v15) expect(out.actions.some((a) => a.sql.includes('ON PARAMETER work_mem'))).toBe(true);

    // Nothing of the role is left anywhere: no ACL entry in any database, no privilege.
    expect(await aclEntries(f, role)).toBe(0);
    for (const d of [one, two]) expect(await privilegesLeft(d, role)).toEqual(NONE);
    expect((await inDatabase<{ ok: boolean }>(one, `select has_table_privilege($1, 's.passed', 'SELECT') as ok`, undefined, [heir]))[0]?.ok).toBe(false);

    // Restore points were written before the first REVOKE: one per grant, the cascaded one too.
    const lines = result.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { action: string; restore?: string; cascade?: boolean; result?: string });
    const firstRevoke = lines.findIndex((l) => l.action === 'revoke_privileges');
    const points = lines.filter((l) => l.action === 'restore_point');
    expect(points.length).toBe(out.restore?.length);
    expect(lines.findIndex((l) => l.action === 'restore_point')).toBeLessThan(firstRevoke);
    expect(lines.slice(firstRevoke).every((l) => l.action === 'revoke_privileges' && l.result === 'done')).toBe(true);
    expect(result.stderr).toContain(`note: 1 grant(s) that ${JSON.stringify(role)} (or its grantees) handed on with the grant option go with it (CASCADE)`);
    expect(points.filter((p) => p.cascade).map((p) => p.restore)).toEqual([
      `BEGIN; SET LOCAL ROLE ${quoteIdent(role)}; GRANT SELECT ON TABLE s.passed TO ${quoteIdent(heir)}; COMMIT`,
    ]);

    // Replayed as the superuser, the restore SQL brings back exactly what was there.
    await replay(out.restore ?? []);
    expect(await aclsOf(f, one, [one, two])).toEqual(before.one);
    expect(await aclsOf(f, two, [one, two])).toEqual(before.two);

    // And a second run finds it all again (and the parameter, shared, once).
    const again = await cli([...base(), 'revoke', role, '--dry-run']);
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as Out).actions.map((a) => a.sql).sort()).toEqual(out.actions.map((a) => a.sql).sort());
  });

  it('--database limits it to one database (and the database itself), --schema to one schema of it', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('user'));
    const grantor = await f.createRole(f.name('lead'));
    const one = await f.createDatabase(f.name('one'));
    const two = await f.createDatabase(f.name('two'));
    for (const d of [one, two]) await grantEverything(f, d, role, grantor);
    await inDatabase(one, `create schema u; create table u.t (x int); grant usage on schema u to ${quoteIdent(role)}; grant select on u.t to ${quoteIdent(role)};
                           alter default privileges grant execute on functions to ${quoteIdent(role)}`);
    const v15 = (await serverVersionNum(f)) >= 150000;
    if (v15) await f.sql(`grant set on parameter work_mem to ${quoteIdent(role)}`);
    const has = async (database: string, sql: string) => (await inDatabase<{ ok: boolean }>(database, `select ${sql} as ok`, undefined, [role]))[0]?.ok;

    const schemaOnly = await cli([...base(), 'revoke', role, '--database', one, '--schema', 's', '--yes']);
    expect(schemaOnly.code, schemaOnly.stdout + schemaOnly.stderr).toBe(0);
    const first = JSON.parse(schemaOnly.stdout) as Out;
    expect(first.actions.every((a) => a.database === one && a.result === 'done')).toBe(true);
    expect(first.actions.some((a) => a.sql.includes('ON SCHEMA s FROM'))).toBe(true);
    expect(first.actions.some((a) => a.sql.includes(' u.') || a.sql.includes('SCHEMA u') || a.sql.includes('DATABASE') || a.sql.includes('FUNCTIONS'))).toBe(false);
    const inS = await privilegesLeft(one, role);
    expect(inS).toEqual({
      ...NONE,
      // objects outside schemas, and the database itself, are outside --schema
      language: true, fdw: true, server: true, large_object: true, connect: true, temporary: true,
      // the global default privilege on functions; those IN SCHEMA s are gone
      defaults: true,
    });
    expect(await has(one, `has_table_privilege($1, 'u.t', 'SELECT')`)).toBe(true);
    expect(await privilegesLeft(two, role)).toMatchObject({ schema: true, table: true, connect: true, large_object: true, defaults: true });

    const databaseOnly = await cli([...base(), 'revoke', role, '--database', one, '--yes']);
    expect(databaseOnly.code, databaseOnly.stdout + databaseOnly.stderr).toBe(0);
    const second = JSON.parse(databaseOnly.stdout) as Out;
    expect(second.actions.filter((a) => a.database === undefined).map((a) => a.sql.replace(/^.*?(REVOKE [^;]*).*$/, '$1')).sort()).toEqual([
      `REVOKE CONNECT ON DATABASE ${one} FROM ${quoteIdent(role)} CASCADE`,
      `REVOKE CONNECT, TEMPORARY ON DATABASE ${one} FROM ${quoteIdent(role)} CASCADE`,
    ]);
    expect(await privilegesLeft(one, role)).toEqual(NONE);
    expect(await has(one, `has_table_privilege($1, 'u.t', 'SELECT') or has_schema_privilege($1, 'u', 'USAGE')`)).toBe(false);
    // The other database and the parameter (shared by the whole server) are untouched.
    expect(Object.values(await privilegesLeft(two, role)).every(Boolean)).toBe(true);
    if (v15) expect(await has(one, `has_parameter_privilege($1, 'work_mem', 'SET')`)).toBe(true);

    // A schema lives in one database: --schema alone is bad usage.
    const bad = await cli([...base(), 'revoke', role, '--schema', 's', '--yes']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--schema needs --database/);
    // A scope that holds nothing: nothing to do, exit 0.
    const empty = await cli(['--database-url', testDatabaseUrl(), 'revoke', role, '--database', one, '--yes']);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain(`nothing to do: ${JSON.stringify(role)} holds no privilege in database ${JSON.stringify(one)}`);
  });

  it('as the cloud-admin role: a grant made by the superuser is a foreign_grant blocker, nothing changes; after its fix, it succeeds', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const role = await f.createRole(f.name('user'));
    const database = await f.createDatabase(f.name('db'));
    const r = quoteIdent(role);
    await inDatabase(
      database,
      `create schema s;
       create table s.theirs (x int);
       create table s.mine (x int);
       alter table s.mine owner to ${quoteIdent(admin.role)};
       grant usage on schema s to ${quoteIdent(admin.role)};
       grant select on s.theirs to ${r};`,
    );
    await inDatabase(database, `grant select, insert on s.mine to ${r}`, admin);
    const before = await aclsOf(f, database, [database]);
    const su = quoteIdent(await superuserOf(f));

    const refused = await cli(['--database-url', admin.url(), '--json', 'revoke', role, '--yes']);
    expect(refused.code, refused.stdout + refused.stderr).toBe(2);
    const out = JSON.parse(refused.stdout) as Out;
    expect(out.actions).toEqual([]);
    expect(out.blockers).toEqual([
      {
        kind: 'foreign_grant',
        database,
        object: 'TABLE s.theirs',
        detail: expect.stringContaining(`was granted by ${su}, and only it (or a superuser) can revoke it`) as unknown,
        fix: `BEGIN; SET LOCAL ROLE ${su}; REVOKE SELECT ON TABLE s.theirs FROM ${r} CASCADE; COMMIT`,
      },
    ]);
    expect(await aclsOf(f, database, [database])).toEqual(before);
    const text = await cli(['--database-url', admin.url(), 'revoke', role, '--dry-run']);
    expect(text.code).toBe(2);
    expect(text.stdout).toContain(`revoke ${role}: refused, nothing was changed — 1 blocker(s) must be removed first:`);
    expect(text.stdout).toContain(`  fix: BEGIN; SET LOCAL ROLE ${su}; REVOKE SELECT ON TABLE s.theirs FROM ${r} CASCADE; COMMIT;`);

    // The fix, run as the superuser in that database; then the admin revokes what it granted itself.
    await inDatabase(database, out.blockers?.[0]?.fix ?? '');
    const done = await cli(['--database-url', admin.url(), '--json', 'revoke', role, '--yes']);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect((JSON.parse(done.stdout) as Out).actions.map((a) => [a.sql, a.result])).toEqual([
      [`BEGIN; SET LOCAL ROLE ${quoteIdent(admin.role)}; REVOKE INSERT, SELECT ON TABLE s.mine FROM ${r} CASCADE; COMMIT`, 'done'],
    ]);
    expect(await aclEntries(f, role)).toBe(0);
  });

  it('as the cloud-admin role: what a role it may act as granted is revoked as that role (16+: SET for object privileges, INHERIT for default privileges)', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const role = await f.createRole(f.name('user'));
    const lead = await f.createRole(f.name('lead'));
    const database = await f.createDatabase(f.name('db'));
    const [r, l, a] = [quoteIdent(role), quoteIdent(lead), quoteIdent(admin.role)];
    await inDatabase(
      database,
      `create schema s authorization ${l};
       set role ${l};
       create table s.t (x int);
       grant usage on schema s to ${r};
       grant select on s.t to ${r};
       alter default privileges in schema s grant select on tables to ${r};`,
    );
    const v16 = (await serverVersionNum(f)) >= 160000;
    await f.sql(`grant ${l} to ${a}${v16 ? ' with set true, inherit false' : ''}`);

    if (v16) {
      // SET ROLE is enough for the REVOKEs, not for ALTER DEFAULT PRIVILEGES FOR ROLE: a blocker, nothing changed.
      const refused = await cli(['--database-url', admin.url(), '--json', 'revoke', role, '--yes']);
      expect(refused.code, refused.stdout + refused.stderr).toBe(2);
      expect((JSON.parse(refused.stdout) as Out).blockers).toEqual([
        {
          kind: 'foreign_grant',
          database,
          object: 'TABLES IN SCHEMA "s"',
          detail: expect.stringContaining(`may not ALTER DEFAULT PRIVILEGES FOR ROLE ${l}`) as unknown,
          fix: `ALTER DEFAULT PRIVILEGES FOR ROLE ${l} IN SCHEMA "s" REVOKE SELECT ON TABLES FROM ${r} CASCADE`,
        },
      ]);
      expect(await aclEntries(f, role)).toBe(3);
      await f.sql(`grant ${l} to ${a} with inherit true`);
    }
    const done = await cli(['--database-url', admin.url(), '--json', 'revoke', role, '--yes']);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    const out = JSON.parse(done.stdout) as Out;
    expect(out.actions.map((x) => x.result)).toEqual(['done', 'done', 'done']);
    expect(out.actions.filter((x) => !x.sql.startsWith('ALTER DEFAULT')).every((x) => x.sql.startsWith(`BEGIN; SET LOCAL ROLE ${l};`))).toBe(true);
    expect(await aclEntries(f, role)).toBe(0);
  });

  it('a database holding grants to the role that refuses connections: unenterable_database, nothing changed anywhere; once opened, it succeeds', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('user'));
    const grantor = await f.createRole(f.name('lead'));
    const open = await f.createDatabase(f.name('open'));
    const closed = await f.createDatabase(f.name('closed'));
    for (const d of [open, closed]) await grantEverything(f, d, role, grantor);
    await f.sql(`alter database ${quoteIdent(closed)} allow_connections false`);
    const before = await aclsOf(f, open, [open, closed]);
    const entries = await aclEntries(f, role);

    const refused = await cli([...base(), 'revoke', role, '--yes']);
    expect(refused.code, refused.stdout + refused.stderr).toBe(2);
    const out = JSON.parse(refused.stdout) as Out;
    expect(out.actions).toEqual([]);
    expect(out.blockers).toEqual([
      {
        kind: 'unenterable_database',
        database: closed,
        detail: expect.stringMatching(/holds \d+ ACL entries naming .* but it does not allow connections/) as unknown,
        fix: `ALTER DATABASE ${quoteIdent(closed)} ALLOW_CONNECTIONS true`,
      },
    ]);
    expect(refused.stderr).not.toContain('restore_point');
    // Nothing changed: not in the open database, not on the databases themselves.
    expect(await aclsOf(f, open, [open, closed])).toEqual(before);
    expect(await aclEntries(f, role)).toBe(entries);

    await f.sql(out.blockers?.[0]?.fix ?? '');
    const done = await cli([...base(), 'revoke', role, '--yes']);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(new Set((JSON.parse(done.stdout) as Out).actions.map((a) => a.database))).toEqual(new Set([undefined, open, closed]));
    expect(await aclEntries(f, role)).toBe(0);
  });

  it('refuses with exit 2, changing nothing: pg_monitor, the bootstrap superuser, its own role, an unknown role, no terminal; asks on a terminal', async () => {
    const f = fixture();
    const bare = await createBareRole(f);
    const role = await f.createRole(f.name('user'));
    const database = await f.createDatabase(f.name('db'));
    await inDatabase(database, `create table t (x int); grant select on t to ${quoteIdent(role)}`);
    const { rows } = await f.sql<{ name: string }>('select rolname::text as name from pg_roles where oid = 10');
    const bootstrap = rows[0]?.name ?? 'postgres';
    const su = quoteIdent(await superuserOf(f));
    const cases: [string[], RegExp][] = [
      [[...base(), 'revoke', 'pg_monitor', '--yes'], /reserved pg_\* role/],
      [[...base(), 'revoke', bootstrap, '--yes'], /is (the bootstrap superuser|the role pgwarden is connected as)/],
      [['--database-url', bare.url(), 'revoke', bare.role, '--yes'], /is the role pgwarden is connected as/],
      [[...base(), 'revoke', f.name('ghost'), '--yes'], /does not exist/],
      [[...base(), 'revoke', role], /refusing to act without a terminal/],
      [[...base(), 'revoke', role, '--database', f.name('nodb'), '--yes'], /database ".*nodb" does not exist/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toContain('restore_point');
    }
    const selectable = async () => (await inDatabase<{ ok: boolean }>(database, `select has_table_privilege($1, 't', 'SELECT') as ok`, undefined, [role]))[0]?.ok;
    expect(await selectable()).toBe(true);

    // On a terminal: --dry-run prints the plan once and writes no audit line; "no" does nothing; "y" revokes.
    const dry = await cli(['--database-url', testDatabaseUrl(), 'revoke', role, '--dry-run'], {}, { answers: [] });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`-- restore SQL`);
    expect(dry.stdout).toContain(`\\connect ${quoteIdent(database)}\nBEGIN; SET LOCAL ROLE ${su}; GRANT SELECT ON TABLE public.t TO ${quoteIdent(role)}; COMMIT;\n`);
    expect(dry.stdout).toMatch(new RegExp(`^planned +${database} +BEGIN; SET LOCAL ROLE`, 'm'));
    expect(dry.stderr).toBe('');
    const no = await cli(['--database-url', testDatabaseUrl(), 'revoke', role], {}, { answers: ['n'] });
    expect(no.code).toBe(0);
    expect(no.stderr).toContain('nothing was done');
    expect(no.stderr).not.toContain('restore_point');
    expect(await selectable()).toBe(true);
    const scratch = mkdtempSync(join(tmpdir(), 'pgwarden-revoke-'));
    try {
      const metricsFile = join(scratch, 'revoke.prom');
      const yes = await cli(['--database-url', testDatabaseUrl(), 'revoke', role, '--metrics-file', metricsFile], {}, { answers: ['y'] });
      expect(yes.code, yes.stdout + yes.stderr).toBe(0);
      expect(yes.stdout).toMatch(new RegExp(`^done +${database} +BEGIN; SET LOCAL ROLE`, 'm'));
      expect(readFileSync(metricsFile, 'utf8')).toContain('pgwarden_actions_total{target="default",policy="revoke",action="revoke_privileges",result="done"} 1');
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    expect(await selectable()).toBe(false);

    // A role that holds nothing: nothing to do, exit 0.
    const nothing = await cli([...base(), 'revoke', role, '--yes']);
    expect(nothing.code).toBe(0);
    expect(JSON.parse(nothing.stdout)).toEqual({ actions: [], restore: [] });
  });

  it('a REVOKE that fails (its table dropped while the question was open) is failed with the server\'s message, the rest done, exit 1', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('user'));
    const database = await f.createDatabase(f.name('db'));
    await inDatabase(database, `create table a (x int); create table b (x int); grant select on a, b to ${quoteIdent(role)}`);
    let stdout = '';
    let stderr = '';
    const code = await runCli(['--database-url', testDatabaseUrl(), '--json', 'revoke', role], {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      env: { PATH: process.env.PATH },
      interactive: true,
      ask: async () => {
        await inDatabase(database, 'drop table a');
        return 'y';
      },
      readStdin: () => Promise.resolve(''),
      raiseExitCode: () => undefined,
    });
    expect(code, stdout + stderr).toBe(1);
    const out = JSON.parse(stdout) as Out;
    expect(out.actions.map((a) => [a.sql.replace(/^.*REVOKE SELECT ON TABLE (\S+) .*$/, '$1'), a.result])).toEqual([
      ['public.a', 'failed'],
      ['public.b', 'done'],
    ]);
    expect(out.actions[0]?.detail).toMatch(/does not exist/);
    expect(stderr).toContain('"action failed"');
  });

  it('hostile names in role, database, schema, table and column: revoked and restored exactly', async () => {
    const f = fixture();
    const role = await f.createRole(f.name(`Ro"le Ü x`));
    const database = await f.createDatabase(f.name(`Db "x" ü`));
    const [r, s, t, c] = [quoteIdent(role), quoteIdent(`Sch"ema É`), quoteIdent(`Ta"ble Ñ`), quoteIdent(`Co"l`)];
    await f.sql(`grant temporary on database ${quoteIdent(database)} to ${r}`);
    await inDatabase(
      database,
      `create schema ${s};
       create table ${s}.${t} (${c} int, plain int);
       create schema other;
       create table other.t (x int);
       grant usage on schema ${s} to ${r} with grant option;
       grant select on ${s}.${t} to ${r};
       grant update (${c}) on ${s}.${t} to ${r};
       grant select on other.t to ${r};
       alter default privileges in schema ${s} grant insert on tables to ${r};`,
    );
    const before = await aclsOf(f, database, [database]);
    const su = quoteIdent(await superuserOf(f));

    const result = await cli([...base(), 'revoke', role, '--database', database, '--schema', `Sch"ema É`, '--yes']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as Out;
    expect(out.actions.map((a) => a.result)).toEqual(['done', 'done', 'done']);
    expect(out.actions.every((a) => a.database === database)).toBe(true);
    const [left] = await inDatabase<{ usage: boolean; sel: boolean; upd: boolean; other: boolean; temp: boolean }>(
      database,
      `select has_schema_privilege($1, $2, 'USAGE') as usage, has_table_privilege($1, $3, 'SELECT') as sel,
              has_column_privilege($1, $3, $4, 'UPDATE') as upd, has_table_privilege($1, 'other.t', 'SELECT') as other,
              has_database_privilege($1, current_database(), 'TEMPORARY') as temp`,
      undefined,
      [role, `Sch"ema É`, `${s}.${t}`, `Co"l`],
    );
    expect(left).toEqual({ usage: false, sel: false, upd: false, other: true, temp: true });
    expect(out.restore?.some((x) => x.sql.includes(`ALTER DEFAULT PRIVILEGES FOR ROLE ${su} IN SCHEMA ${s} GRANT INSERT ON TABLES TO ${r}`))).toBe(true);

    await replay(out.restore ?? []);
    expect(await aclsOf(f, database, [database])).toEqual(before);

    // Text mode: the restore SQL is a psql script (\connect with the quoted name).
    const text = await cli(['--database-url', testDatabaseUrl(), 'revoke', role, '--database', database, '--dry-run']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`\\connect ${quoteIdent(database)}\n`);
  });
});

describe('revoke scope (pure)', () => {
  const grant = (object: string, database: string | null = 'd', defaults?: Grant['defaults']): Grant => ({
    object, privileges: ['SELECT'], grantee: 'r', grantor: 'g', grantable: false, database, ...(defaults ? { defaults } : {}),
  });
  it('reads the schema from names as quote_ident writes them', () => {
    expect(schemaOf(grant('TABLE s.t'))).toBe('s');
    expect(schemaOf(grant('TABLE "a.b"."c.d"'))).toBe('a.b');
    expect(schemaOf(grant('SEQUENCE "x""y z".q'))).toBe('x"y z');
    expect(schemaOf(grant('FUNCTION s.f(integer, "My Type")'))).toBe('s');
    expect(schemaOf(grant('PROCEDURE "Ü".p()'))).toBe('Ü');
    expect(schemaOf(grant('DOMAIN s.d'))).toBe('s');
    expect(schemaOf(grant('SCHEMA "Sch""ema"'))).toBe('Sch"ema');
    expect(schemaOf(grant('TABLES', 'd', { forRole: 'o', schema: 'S 1', objects: 'TABLES' }))).toBe('S 1');
    expect(schemaOf(grant('TABLES', 'd', { forRole: 'o', schema: null, objects: 'TABLES' }))).toBeNull();
    for (const object of ['LANGUAGE sql', 'LARGE OBJECT 123', 'FOREIGN DATA WRAPPER w', 'FOREIGN SERVER "s.t"']) expect(schemaOf(grant(object))).toBeNull();
  });
  it('--database keeps its objects and the database itself; --schema only what is in the schema', () => {
    const db = { database: 'd' };
    expect(inScope(grant('TABLE s.t'), db)).toBe(true);
    expect(inScope(grant('TABLE s.t', 'other'), db)).toBe(false);
    expect(inScope(grant('DATABASE d', null), db)).toBe(true);
    expect(inScope(grant('DATABASE "d x"', null), { database: 'd x' })).toBe(true);
    expect(inScope(grant('DATABASE other', null), db)).toBe(false);
    expect(inScope(grant('PARAMETER work_mem', null), db)).toBe(false);
    expect(inScope(grant('PARAMETER work_mem', null), {})).toBe(true);
    const schema = { database: 'd', schema: 's' };
    expect(inScope(grant('TABLE s.t'), schema)).toBe(true);
    expect(inScope(grant('SCHEMA s'), schema)).toBe(true);
    expect(inScope(grant('TABLE "s.t".x'), schema)).toBe(false);
    expect(inScope(grant('LANGUAGE sql'), schema)).toBe(false);
    expect(inScope(grant('DATABASE d', null), schema)).toBe(false);
  });
});
