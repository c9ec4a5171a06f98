/**
 * The whole life of a user: `adduser`, `access` (and the denials it explains), `offboard` — on a
 * server that checks passwords with SCRAM (a throwaway embedded PostgreSQL; in the version matrix,
 * the matrix server), with real logins over TCP as the new role and statements that must succeed
 * exactly where `access` says they will.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSchemaSpec } from '../../src/cli/adduser.js';
import { quoteIdent, quoteLiteral } from '../../src/db/quote.js';
import { cli } from '../support/cli.js';
import { startEmbeddedServer, type EmbeddedServer } from '../support/embedded.js';
import { testDatabaseUrl } from '../support/fixture.js';

let server: EmbeddedServer | undefined;
let url: string;
let admin: pg.Client;
let versionNum: number;
const roles: string[] = [];
const databases: string[] = [];
const scratch = mkdtempSync(join(tmpdir(), 'pgwarden-lifecycle-'));

const suffix = Math.random().toString(16).slice(2, 8);
const name = (s: string) => `pgw_life_${suffix}_${s}`;

beforeAll(async () => {
  if (process.env.PGWARDEN_TEST_EXPECT_MAJOR) url = testDatabaseUrl();
  else {
    server = await startEmbeddedServer({ package: 'pg17', authMethod: 'scram-sha-256' });
    url = server.url;
  }
  admin = new pg.Client(url);
  await admin.connect();
  versionNum = Number((await admin.query<{ v: string }>("select current_setting('server_version_num') as v")).rows[0]?.v);
  expect(versionNum).toBeGreaterThan(140000);
}, 180_000);

afterAll(async () => {
  for (const d of databases.reverse()) await admin.query(`drop database if exists ${quoteIdent(d)} with (force)`).catch(() => undefined);
  for (const r of roles.reverse()) {
    await admin.query(`drop owned by ${quoteIdent(r)} cascade`).catch(() => undefined);
    await admin.query(`drop role if exists ${quoteIdent(r)}`).catch(() => undefined);
  }
  await admin?.end();
  await server?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

function urlAs(role: string, password: string, database: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(role);
  u.password = encodeURIComponent(password);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** Connects as `role`; the client, or the server's refusal. */
async function connectAs(role: string, password: string, database: string): Promise<pg.Client | string> {
  const client = new pg.Client({ connectionString: urlAs(role, password, database) });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.end().catch(() => undefined);
    return (err as Error).message;
  }
}

/** Runs `sql` as `role` in `database`: true, or the error message. */
async function runAs(role: string, password: string, database: string, sql: string): Promise<true | string> {
  const client = await connectAs(role, password, database);
  if (typeof client === 'string') return client;
  try {
    await client.query(sql);
    return true;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function inDatabase<T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  const client = new pg.Client(u.toString());
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function createRole(role: string, options = ''): Promise<string> {
  await admin.query(`create role ${quoteIdent(role)} ${options}`);
  roles.push(role);
  return role;
}

async function createDatabase(database: string): Promise<string> {
  await admin.query(`create database ${quoteIdent(database)} template template0`);
  databases.push(database);
  return database;
}

/** `DB.SCHEMA` as --schema takes it, both names in double quotes. */
const schemaArg = (database: string, schema: string, privilege?: string) =>
  `"${database.replace(/"/g, '""')}"."${schema.replace(/"/g, '""')}"${privilege ? `:${privilege}` : ''}`;

interface AccessJson {
  problems: string[];
  memberOf: { role: string; inherits: boolean; canSet: boolean; direct: boolean }[];
  databases: {
    database: string;
    connect: { granted: boolean; via: string[] };
    problems: string[];
    schemas: { schema: string; usage: { granted: boolean; via: string[] }; create: { granted: boolean; via: string[] }; objects: { kind: string; total: number; privileges: Record<string, number> }[] }[] | null;
    defaultPrivileges: { creator: string; schema: string | null; objectType: string; privileges: string[]; grantee: string }[] | null;
  }[];
  table?: { database: string; schema: string; name: string; privileges: { privilege: string; granted: boolean; usable: boolean; via: string[]; reasons: string[]; columns?: string[] }[]; notes: string[] };
}

async function access(role: string, ...args: string[]): Promise<AccessJson> {
  const result = await cli(['--database-url', url, '--json', '--log-level', 'error', 'access', role, ...args]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as AccessJson;
}

const privilegeOf = (report: AccessJson, privilege: string) => report.table?.privileges.find((p) => p.privilege === privilege);

describe('the life of a user: adduser, access, offboard', () => {
  const password = 'c0rrect hörse battery';
  let database: string;
  let readers: string;
  let owner: string;
  const schema = 'Sales "Q"';
  const table = 'Orders ü';

  beforeAll(async () => {
    database = await createDatabase(name('db.1 x'));
    readers = await createRole(name('readers'));
    owner = await createRole(name('owner'));
    await inDatabase(database, async (c) => {
      await c.query(`create schema ${quoteIdent(schema)} authorization ${quoteIdent(owner)}`);
      await c.query(`set role ${quoteIdent(owner)}`);
      await c.query(`create table ${quoteIdent(schema)}.${quoteIdent(table)} (id int, note text)`);
      await c.query(`create table ${quoteIdent(schema)}.hidden (id int)`);
      await c.query(`create sequence ${quoteIdent(schema)}.seq`);
      await c.query(`insert into ${quoteIdent(schema)}.${quoteIdent(table)} values (1, 'one')`);
      await c.query(`grant select on ${quoteIdent(schema)}.${quoteIdent(table)} to ${quoteIdent(readers)}`);
      await c.query(`alter default privileges in schema ${quoteIdent(schema)} grant select on tables to ${quoteIdent(readers)}`);
      await c.query('reset role');
    });
  });

  it('creates a login role with only a SCRAM verifier, an expiry, membership, CONNECT and schema access — and it works over TCP', async () => {
    const role = name(`Zoë "O'Hara"`);
    roles.push(role);
    const metricsFile = join(scratch, 'adduser.prom');
    const result = await cli(
      [
        '--database-url', url, '--json', 'adduser', role,
        '--valid-for', '90d', '--in-role', readers, '--connect', database,
        '--schema', schemaArg(database, schema, 'create'), '--conn-limit', '5', '--metrics-file', metricsFile,
      ],
      {},
      { stdin: `${password}\n` },
    );
    expect(result.stderr).not.toContain(password);
    expect(result.stderr).not.toContain('SCRAM-SHA-256$');
    expect(result.stdout).not.toContain('SCRAM-SHA-256$');
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout) as { created: boolean; validUntil: string; actions: { action: string; result: string; sql: string }[] };
    expect(out.created).toBe(true);
    expect(out.actions.map((a) => [a.action, a.result])).toEqual([
      ['create_role', 'done'],
      ['grant_role', 'done'],
      ['grant_connect', 'done'],
      ['set_password', 'done'],
      ['grant_schema', 'done'],
    ]);
    expect(out.actions[3]?.sql).toBe(`alter role ${quoteIdent(role)} password '***'`);
    const days = (Date.parse(out.validUntil) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThan(90.1);

    const { rows } = await admin.query<{ rolpassword: string; rolconnlimit: number; rolcanlogin: boolean; valid: Date }>(
      'select rolpassword, rolconnlimit, rolcanlogin, rolvaliduntil as valid from pg_authid where rolname = $1',
      [role],
    );
    expect(rows[0]?.rolpassword).toMatch(/^SCRAM-SHA-256\$\d+:/);
    expect(rows[0]?.rolconnlimit).toBe(5);
    expect(rows[0]?.rolcanlogin).toBe(true);
    expect(rows[0]?.valid.toISOString()).toBe(new Date(out.validUntil).toISOString());

    // A real login with the password, and what the grants promise.
    expect(await runAs(role, password, database, `select * from ${quoteIdent(schema)}.${quoteIdent(table)}`)).toBe(true);
    expect(await runAs(role, password, database, `create table ${quoteIdent(schema)}.mine (x int)`)).toBe(true);
    expect(await runAs(role, 'wrong', database, 'select 1')).toMatch(/password authentication failed/);

    const metrics = readFileSync(metricsFile, 'utf8');
    expect(metrics).toContain('pgwarden_actions_total{target="default",policy="adduser",action="create_role",result="done"} 1');
    expect(metrics).toContain('pgwarden_actions_total{target="default",policy="adduser",action="grant_schema",result="done"} 1');

    // An existing role is an error; --update adds only what is missing, and a second --update adds nothing.
    const again = await cli(['--database-url', url, 'adduser', role, '--valid-for', '90d'], {}, { stdin: 'x\n' });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists .*--update/);
    const update = ['--database-url', url, '--json', '--log-level', 'error', 'adduser', role, '--update', '--in-role', readers, '--connect', database, '--connect', 'postgres', '--schema', schemaArg(database, schema), '--metrics-file', metricsFile];
    const first = JSON.parse((await cli(update)).stdout) as { actions: { action: string; database?: string; result: string }[]; unchanged: string[] };
    expect(first.actions.map((a) => [a.action, a.database, a.result])).toEqual([['grant_connect', 'postgres', 'done']]);
    expect(first.unchanged.join('\n')).toMatch(/member of .*readers: already/);
    const second = JSON.parse((await cli(update)).stdout) as { actions: unknown[] };
    expect(second.actions).toEqual([]);
    expect(readFileSync(metricsFile, 'utf8')).toContain('pgwarden_actions_total{target="default",policy="adduser",action="grant_connect",result="done"} 2');

    // access agrees with what just worked, and says which membership gives each right.
    const report = await access(role, '--database', database, '--schema', schema, '--table', table);
    expect(report.memberOf).toEqual([{ role: readers, inherits: true, canSet: true, direct: true }]);
    const there = report.databases[0];
    expect(there?.connect).toEqual({ granted: true, via: [role, 'PUBLIC'] });
    expect(there?.schemas?.[0]?.usage).toEqual({ granted: true, via: [role] });
    expect(there?.schemas?.[0]?.create).toEqual({ granted: true, via: [role] });
    expect(there?.schemas?.[0]?.objects.find((o) => o.kind === 'table')).toEqual({
      kind: 'table',
      total: 3,
      privileges: { SELECT: 2, INSERT: 1, UPDATE: 1, DELETE: 1, TRUNCATE: 1, REFERENCES: 1, TRIGGER: 1 },
    });
    expect(there?.defaultPrivileges).toEqual([{ creator: owner, schema, objectType: 'tables', privileges: ['SELECT'], grantee: readers, how: 'group' }]);
    expect(privilegeOf(report, 'SELECT')).toMatchObject({ granted: true, usable: true, via: [readers] });
    expect(privilegeOf(report, 'INSERT')).toMatchObject({ granted: false, usable: false });
    expect(privilegeOf(report, 'INSERT')?.reasons.join()).toMatch(/no INSERT on "Sales ""Q"""\."Orders ü": not granted/);
    expect(await runAs(role, password, database, `insert into ${quoteIdent(schema)}.${quoteIdent(table)} values (2, 'two')`)).toMatch(/permission denied/);

    // Offboarding ends its life: everything it owns goes to the owner, then the role is dropped.
    const off = await cli(['--database-url', url, '--json', '--log-level', 'error', 'offboard', role, '--reassign-to', owner, '--drop', '--yes', '--metrics-file', metricsFile]);
    expect(off.code).toBe(0);
    // The same textfile now counts both commands' actions.
    const counted = readFileSync(metricsFile, 'utf8');
    expect(counted).toContain('pgwarden_actions_total{target="default",policy="offboard",action="drop_role",result="done"} 1');
    expect(counted).toContain('pgwarden_actions_total{target="default",policy="adduser",action="create_role",result="done"} 1');
    expect((await admin.query('select 1 from pg_roles where rolname = $1', [role])).rowCount).toBe(0);
    const mine = await inDatabase(database, (c) => c.query<{ owner: string }>(`select tableowner as owner from pg_tables where tablename = 'mine'`));
    expect(mine.rows[0]?.owner).toBe(owner);
  });

  it('explains each denial in plain words, and the server agrees', async () => {
    const role = await createRole(name('denied'), `login password ${quoteLiteral(password)}`);
    await admin.query(`grant ${quoteIdent(readers)} to ${quoteIdent(role)}`);
    const select = `select * from ${quoteIdent(schema)}.${quoteIdent(table)}`;
    const explain = async () => access(role, '--database', database, '--table', table);

    // 1. SELECT granted (through readers), no USAGE on the schema.
    let report = await explain();
    expect(privilegeOf(report, 'SELECT')).toMatchObject({ granted: true, usable: false });
    expect(privilegeOf(report, 'SELECT')?.reasons).toEqual([`SELECT on "Sales ""Q"""."Orders ü" is granted, but no USAGE on schema "Sales ""Q"""`]);
    expect(await runAs(role, password, database, select)).toMatch(/permission denied for schema/);

    // Without --database, the one database that has the table is found, and the report is about it.
    const anywhere = await access(role, '--table', table);
    expect(anywhere.table).toMatchObject({ database, schema, name: table });
    expect(anywhere.databases.map((d) => d.database)).toEqual([database]);
    const nowhere = await cli(['--database-url', url, 'access', role, '--table', `${table} nowhere`]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toMatch(/--table: no table, view or sequence ".*nowhere" in any database/);

    await inDatabase(database, (c) => c.query(`grant usage on schema ${quoteIdent(schema)} to ${quoteIdent(readers)}`));
    report = await explain();
    expect(privilegeOf(report, 'SELECT')).toMatchObject({ usable: true, via: [readers], reasons: [] });
    expect(await runAs(role, password, database, select)).toBe(true);

    // 2. Inheritance: a membership that does not inherit (PostgreSQL 16: per grant; before: per role).
    if (versionNum >= 160000) {
      await admin.query(`revoke ${quoteIdent(readers)} from ${quoteIdent(role)}`);
      await admin.query(`grant ${quoteIdent(readers)} to ${quoteIdent(role)} with inherit false`);
    } else await admin.query(`alter role ${quoteIdent(role)} noinherit`);
    report = await explain();
    expect(report.memberOf).toEqual([{ role: readers, inherits: false, canSet: true, direct: true }]);
    expect(privilegeOf(report, 'SELECT')?.usable).toBe(false);
    expect(privilegeOf(report, 'SELECT')?.reasons.join('\n')).toMatch(/granted to pgw_life_\w+_readers, but .* does not inherit/);
    expect(await runAs(role, password, database, select)).toMatch(/permission denied/);
    if (versionNum >= 160000) {
      await admin.query(`revoke ${quoteIdent(readers)} from ${quoteIdent(role)}`);
      await admin.query(`grant ${quoteIdent(readers)} to ${quoteIdent(role)} with inherit true`);
    } else await admin.query(`alter role ${quoteIdent(role)} inherit`);
    expect(await runAs(role, password, database, select)).toBe(true);

    // 3. No CONNECT: PUBLIC's was revoked.
    await admin.query(`revoke connect on database ${quoteIdent(database)} from public`);
    try {
      report = await explain();
      expect(privilegeOf(report, 'SELECT')?.usable).toBe(false);
      expect(report.databases[0]?.problems).toEqual([`no CONNECT on database "${database}" (PUBLIC's CONNECT was revoked): grant it to ${role} or one of its groups`]);
      expect(privilegeOf(report, 'SELECT')?.reasons).toEqual(report.databases[0]?.problems);
      expect(await runAs(role, password, database, select)).toMatch(/permission denied for database/);
    } finally {
      await admin.query(`grant connect on database ${quoteIdent(database)} to public`);
    }

    // 4. NOLOGIN.
    await admin.query(`alter role ${quoteIdent(role)} nologin`);
    report = await explain();
    expect(report.problems).toEqual(['the role is NOLOGIN: it cannot log in (members can still use its rights through SET ROLE)']);
    expect(privilegeOf(report, 'SELECT')?.usable).toBe(false);
    expect(await runAs(role, password, database, select)).toMatch(/not permitted to log in/);
    await admin.query(`alter role ${quoteIdent(role)} login`);

    // 5. Expired password.
    await admin.query(`alter role ${quoteIdent(role)} valid until '2020-01-02 00:00:00+00'`);
    report = await explain();
    expect(report.problems).toEqual(['rolvaliduntil passed on 2020-01-02: password logins are refused (certificate or trust logins are not)']);
    expect(await runAs(role, password, database, select)).toMatch(/password authentication failed/);
    await admin.query(`alter role ${quoteIdent(role)} valid until 'infinity'`);

    // 6. Column privileges only.
    await inDatabase(database, (c) => c.query(`grant update (note) on ${quoteIdent(schema)}.${quoteIdent(table)} to ${quoteIdent(role)}`));
    report = await explain();
    expect(privilegeOf(report, 'UPDATE')).toMatchObject({ granted: false, usable: false, columns: ['note'] });
    expect(await runAs(role, password, database, `update ${quoteIdent(schema)}.${quoteIdent(table)} set note = 'x'`)).toBe(true);
    expect(await runAs(role, password, database, `update ${quoteIdent(schema)}.${quoteIdent(table)} set id = 3`)).toMatch(/permission denied/);

    // Every table privilege: usable exactly where the server lets the statement through — before
    // and after the group gets INSERT, UPDATE and DELETE, so both answers are exercised for each.
    const statements: Record<string, string> = {
      SELECT: select,
      INSERT: `insert into ${quoteIdent(schema)}.${quoteIdent(table)} (id) values (9)`,
      UPDATE: `update ${quoteIdent(schema)}.${quoteIdent(table)} set id = 1 where false`,
      DELETE: `delete from ${quoteIdent(schema)}.${quoteIdent(table)} where false`,
      TRUNCATE: `truncate ${quoteIdent(schema)}.${quoteIdent(table)}`,
    };
    const agree = async () => {
      const now = await explain();
      const seen: Record<string, boolean> = {};
      for (const [privilege, sql] of Object.entries(statements)) {
        const works = (await runAs(role, password, database, `begin; ${sql}; rollback`)) === true;
        expect([privilege, works]).toEqual([privilege, privilegeOf(now, privilege)?.usable]);
        seen[privilege] = works;
      }
      return seen;
    };
    expect(await agree()).toEqual({ SELECT: true, INSERT: false, UPDATE: false, DELETE: false, TRUNCATE: false });
    await inDatabase(database, (c) => c.query(`grant insert, update, delete on ${quoteIdent(schema)}.${quoteIdent(table)} to ${quoteIdent(readers)}`));
    expect(await agree()).toEqual({ SELECT: true, INSERT: true, UPDATE: true, DELETE: true, TRUNCATE: false });
  });

  it('sees what a bare grant check misses: serial sequences, views, -infinity, connection limits', async () => {
    const role = await createRole(name('edge'), `login password ${quoteLiteral(password)}`);
    await inDatabase(database, async (c) => {
      await c.query(`grant usage on schema ${quoteIdent(schema)} to ${quoteIdent(role)}`);
      await c.query(`create table ${quoteIdent(schema)}.tickets (id serial, body text)`);
      await c.query(`grant insert, select on ${quoteIdent(schema)}.tickets to ${quoteIdent(role)}`);
      await c.query(`create view ${quoteIdent(schema)}.v as select id from ${quoteIdent(schema)}.tickets`);
      await c.query(`grant select on ${quoteIdent(schema)}.v to ${quoteIdent(role)}`);
    });
    const insert = `insert into ${quoteIdent(schema)}.tickets (body) values ('x')`;
    let report = await access(role, '--database', database, '--schema', schema, '--table', 'tickets');
    expect(privilegeOf(report, 'INSERT')).toMatchObject({ granted: true, usable: false });
    expect(privilegeOf(report, 'INSERT')?.reasons.join()).toMatch(/calls nextval\(\) of sequence "Sales ""Q""".tickets_id_seq, on which .* has no USAGE/);
    expect(await runAs(role, password, database, insert)).toMatch(/permission denied for sequence/);
    await inDatabase(database, (c) => c.query(`grant usage on sequence ${quoteIdent(schema)}.tickets_id_seq to ${quoteIdent(role)}`));
    report = await access(role, '--database', database, '--schema', schema, '--table', 'tickets');
    expect(privilegeOf(report, 'INSERT')).toMatchObject({ usable: true, reasons: [] });
    expect(await runAs(role, password, database, insert)).toBe(true);

    report = await access(role, '--database', database, '--schema', schema, '--table', 'v');
    expect(report.table?.notes.join()).toMatch(/is a view: it reads its tables with the rights of its owner/);
    expect(privilegeOf(report, 'SELECT')?.usable).toBe(true);
    expect(await runAs(role, password, database, `select * from ${quoteIdent(schema)}.v`)).toBe(true);

    await admin.query(`alter database ${quoteIdent(database)} connection limit 0`);
    try {
      report = await access(role, '--database', database);
      expect(report.databases[0]?.problems).toEqual([`database "${database}" has CONNECTION LIMIT 0: only superusers can connect`]);
      expect(await runAs(role, password, database, 'select 1')).toMatch(/too many connections|not currently accepting connections/);
    } finally {
      await admin.query(`alter database ${quoteIdent(database)} connection limit -1`);
    }

    await admin.query(`alter role ${quoteIdent(role)} valid until '-infinity'`);
    report = await access(role, '--database', database);
    expect(report.problems).toEqual(['rolvaliduntil is -infinity: password logins are refused for good (certificate or trust logins are not)']);
    expect(await runAs(role, password, database, 'select 1')).toMatch(/password authentication failed/);
    // adduser --update never undoes that lock, even when asked for an expiry.
    const update = await cli(['--database-url', url, '--json', '--log-level', 'error', 'adduser', role, '--update', '--valid-for', '30d']);
    expect(JSON.parse(update.stdout)).toMatchObject({ actions: [], validUntil: '-infinity' });
  });

  it('as a CREATEROLE role (not a superuser): refuses what it could not grant, before doing anything', async () => {
    const manager = await createRole(name('manager'), `login createrole password ${quoteLiteral(password)}`);
    const managerUrl = urlAs(manager, password, 'postgres');
    const newcomer = name('newcomer');
    roles.push(newcomer);
    const run = (...args: string[]) => cli(['--database-url', managerUrl, '--log-level', 'error', 'adduser', newcomer, '--valid-for', '7d', ...args], {}, { stdin: `${password}\n` });
    const exists = async () => (await admin.query('select 1 from pg_roles where rolname = $1', [newcomer])).rowCount === 1;

    const connect = await run('--connect', database);
    expect(connect.code).toBe(2);
    expect(connect.stderr).toMatch(/--connect ".*": pgwarden's role may not grant CONNECT on it/);
    const usage = await run('--schema', schemaArg(database, schema));
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/may not grant USAGE on it/);
    const group = await run('--in-role', readers);
    if (versionNum >= 160000) {
      expect(group.code).toBe(2);
      expect(group.stderr).toMatch(/--in-role ".*readers": pgwarden's role may not grant it \(PostgreSQL 16\+: it needs ADMIN OPTION/);
      expect(await exists()).toBe(false);
      // With ADMIN OPTION on the group (and CONNECT grantable), it goes through.
      await admin.query(`grant ${quoteIdent(readers)} to ${quoteIdent(manager)} with admin option`);
    } else {
      expect(group.code).toBe(0);
      await admin.query(`drop role ${quoteIdent(newcomer)}`);
    }
    expect(await exists()).toBe(false);
    await admin.query(`grant connect on database ${quoteIdent(database)} to ${quoteIdent(manager)} with grant option`);
    const ok = await run('--in-role', readers, '--connect', database, '--json');
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).not.toContain('SCRAM-SHA-256$');
    expect(await runAs(newcomer, password, database, 'select 1')).toBe(true);
  });

  it('refuses bad input with exit 2 before anything is created', async () => {
    const role = name('never');
    const config = join(scratch, 'require-expiry.yaml');
    writeFileSync(config, 'policies:\n  - { name: expiry, kind: password_expiry, schedule: "0 * * * *", warnWithin: 14d, requireExpiry: true }\n');
    const cases: [string[], RegExp][] = [
      [['adduser', role], /an expiry is required/],
      [['--config', config, 'adduser', role, '--no-expiry'], /policy "expiry" requires an expiry/],
      [['adduser', role, '--valid-for', '90d', '--valid-until', '2030-01-01'], /exclude each other/],
      [['adduser', role, '--valid-for', 'soon'], /--valid-for: "soon" is not a duration/],
      [['adduser', role, '--no-expiry', '--schema', 'nodot'], /--schema: "nodot" has no schema/],
      [['adduser', role, '--no-expiry', '--schema', `${database}.nope`], /--schema: .*database "[^"]*" does not exist|--schema: schema/],
      [['adduser', role, '--no-expiry', '--schema', schemaArg(database, 'nope')], /--schema: schema "nope" does not exist/],
      [['adduser', role, '--no-expiry', '--in-role', name('ghost')], /--in-role: role ".*ghost" does not exist/],
      [['adduser', role, '--no-expiry', '--connect', name('ghostdb')], /--connect: database ".*ghostdb" does not exist/],
      [['adduser', role, '--no-expiry', '--conn-limit', '-5'], /--conn-limit: "-5"/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(['--database-url', url, ...args], {}, { stdin: 'pw\n' });
      expect([args.join(' '), result.code]).toEqual([args.join(' '), 2]);
      expect(result.stderr).toMatch(message);
    }
    // --dry-run prints every statement, asks for no password and creates nothing.
    const dry = await cli(['--database-url', url, 'adduser', role, '--no-expiry', '--connect', database, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/planned\s+create_role\s+create role "pgw_life_\w+_never" login\n/);
    expect(dry.stdout).toMatch(/planned\s+set_password\s+alter role "pgw_life_\w+_never" password '\*\*\*'/);
    expect(dry.stdout).toMatch(/planned\s+grant_connect .*grant connect on database/);
    expect((await admin.query('select 1 from pg_roles where rolname = $1', [role])).rowCount).toBe(0);
  });

  it('parses --schema with quoted names holding dots, colons and quotes', () => {
    expect(parseSchemaSpec('app.public')).toEqual({ database: 'app', schema: 'public', privileges: ['USAGE'] });
    expect(parseSchemaSpec('app.Sales:create')).toEqual({ database: 'app', schema: 'Sales', privileges: ['USAGE', 'CREATE'] });
    expect(parseSchemaSpec('"my.db"."a""b:c":usage')).toEqual({ database: 'my.db', schema: 'a"b:c', privileges: ['USAGE'] });
    expect(() => parseSchemaSpec('"open.public')).toThrow(/--schema/);
  });
});
