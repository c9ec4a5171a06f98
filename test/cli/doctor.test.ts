/**
 * `pgwarden doctor` with the example configuration, run as a bare LOGIN role, as the cloud-admin
 * role and as the superuser, on the real server; every printed fix run as the superuser and
 * doctor asked again. The server is shared with other test files running at the same time: other
 * tests' roles and databases come and go, so assertions name this test's own objects.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { DoctorJson } from '../../src/cli/doctor.js';
import { loadConfig } from '../../src/config/load.js';
import type { Policy } from '../../src/config/policies.js';
import type { CapabilityFacts } from '../../src/db/capabilities.js';
import { TargetDb } from '../../src/db/pool.js';
import { quoteIdent, quoteLiteral } from '../../src/db/quote.js';
import { startDaemon } from '../../src/daemon.js';
import { assess, doctorSettings, type Check, type DoctorSettings } from '../../src/doctor/checks.js';
import { createLogger } from '../../src/log.js';
import { cli, isolatedEnv } from '../support/cli.js';
import { useConfigFiles } from '../support/config-file.js';
import { ROLE_PASSWORD, testDatabaseUrl, urlFor, useFixture, waitFor, type Fixture } from '../support/fixture.js';
import { freePort } from '../support/net.js';
import { createBareRole, createCloudAdmin, serverVersionNum, type TestLogin } from '../support/roles.js';

const EXAMPLE = fileURLToPath(new URL('../../config/pgwarden.example.yaml', import.meta.url));
const EXAMPLE_POLICIES = ['idle-in-transaction', 'idle-sessions', 'long-queries', 'long-transactions', 'lock-blockers', 'password-expiry', 'connection-pressure', 'app-quota', 'disabled-users'];
const SESSION_READERS = ['idle-in-transaction', 'idle-sessions', 'long-queries', 'long-transactions', 'lock-blockers', 'connection-pressure', 'app-quota', 'disabled-users'];

const fixture = useFixture('doctor');
const configFile = useConfigFiles('doctor');

interface Run {
  readonly code: number;
  readonly json: DoctorJson;
  readonly text: string;
}

/** doctor with `config` (default the example) as the URL's role, in JSON and in text. */
async function doctor(url: string, config = EXAMPLE): Promise<Run> {
  const args = ['--config', config, '--database-url', url, '--log-level', 'error'];
  const json = await cli([...args, '--json', 'doctor']);
  const text = await cli([...args, 'doctor']);
  expect(json.stderr).toBe('');
  expect(text.code).toBe(json.code);
  return { code: json.code, json: JSON.parse(json.stdout) as DoctorJson, text: text.stdout };
}

function checkOf(run: Run, name: string): Check {
  const check = run.json.targets[0]?.checks.find((c) => c.name === name);
  if (!check) throw new Error(`no ${name} check in ${JSON.stringify(run.json)}`);
  return check;
}

function names(run: Run): string[] {
  return run.json.targets[0]?.checks.map((c) => c.name) ?? [];
}

/** Runs a printed fix as the superuser: it must be runnable exactly as printed. */
async function runFix(f: Fixture, fix: string | null): Promise<void> {
  expect(fix).not.toBeNull();
  for (let attempt = 1; ; attempt++) {
    try {
      await f.sql(fix as string);
      return;
    } catch (err) {
      // Role DDL on the shared catalogs while another test file drops roles can meet the server's
      // own race ("tuple concurrently deleted/updated", XX000): the statement is fine, run it again.
      if (attempt >= 3 || (err as { code?: string }).code !== 'XX000') throw err;
    }
  }
}

/**
 * The statements of `fix` about this test's objects (the server is shared with other tests, whose
 * databases and roles come and go): judged by what is granted, before the last ` TO ` — the
 * grantee is this test's role in every statement, so it says nothing.
 */
function ownStatements(f: Fixture, fix: string | null): string {
  return (fix ?? '')
    .split('; ')
    .filter((s) => s.slice(0, s.lastIndexOf(' TO ')).includes(f.prefix))
    .join('; ');
}

describe('pgwarden doctor', () => {
  it('as a bare LOGIN role: reading sessions, signalling and altering roles are missing with their grants; exit 1; fixed by its fixes', async () => {
    const f = fixture();
    const bare = await createBareRole(f);
    const me = quoteIdent(bare.role);
    const run = await doctor(bare.url());

    expect(run.code).toBe(1);
    // DESIGN.md shape: {targets: [{target, role, server, checks: [{name, ok, neededBy, detail, fix}]}]}
    expect(run.json.targets).toHaveLength(1);
    const target = run.json.targets[0]!;
    expect(target.target).toBe('default');
    expect(target.role).toBe(bare.role);
    expect(target.server).toMatch(/^\d+\.\d+/);
    expect(target.attributes).toMatchObject({ currentRole: bare.role, superuser: false, createRole: false, login: true, memberOf: [] });
    for (const c of target.checks) {
      expect(Object.keys(c).sort()).toEqual(['detail', 'fix', 'name', 'neededBy', 'ok']);
      expect(c.neededBy.length).toBeGreaterThan(0);
      if (c.ok) expect(c.fix).toBeNull();
    }

    const read = checkOf(run, 'read_all_sessions');
    expect(read).toMatchObject({ ok: false, fix: `GRANT pg_read_all_stats TO ${me}` });
    // configured policy names (not kinds) first, in config order, then commands
    expect(read.neededBy).toEqual([...SESSION_READERS, 'sessions', 'locks', 'roles', 'logout', 'offboard', 'plan']);
    expect(checkOf(run, 'signal_backends')).toMatchObject({ ok: false, fix: `GRANT pg_signal_backend TO ${me}` });
    expect(checkOf(run, 'signal_backends').neededBy).toEqual([...SESSION_READERS, 'logout', 'offboard']);
    expect(checkOf(run, 'alter_roles')).toMatchObject({ ok: false, fix: `ALTER ROLE ${me} CREATEROLE` });
    expect(checkOf(run, 'alter_roles').neededBy).toEqual(['disabled-users', 'logout --lock', 'offboard', 'passwd', 'adduser']);
    expect(checkOf(run, 'own_login')).toMatchObject({ ok: true, fix: null });
    expect(checkOf(run, 'own_login').neededBy.slice(0, EXAMPLE_POLICIES.length)).toEqual(EXAMPLE_POLICIES);
    // exempt.superusers is true in the example: signalling superusers is nobody's concern
    expect(names(run)).not.toContain('signal_superusers');

    const lines = run.text.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^target default: connected as ${escape(JSON.stringify(bare.role))} \\(PostgreSQL \\d+\\.\\d+\\): superuser no, createrole no, member of no role$`));
    expect(lines).toContain(`        fix: GRANT pg_read_all_stats TO ${me};`);
    expect(lines.find((l) => l.startsWith('MISSING read_all_sessions'))).toContain('needed by idle-in-transaction, idle-sessions,');
    expect(lines.filter(Boolean).at(-1)).toMatch(/^target default: \d+ of 9 configured policies cannot do all of their job: idle-in-transaction, /);

    for (const name of ['read_all_sessions', 'signal_backends', 'alter_roles']) await runFix(f, checkOf(run, name).fix);
    const fixed = await doctor(bare.url());
    for (const name of ['read_all_sessions', 'signal_backends', 'alter_roles']) expect(checkOf(fixed, name)).toMatchObject({ ok: true, fix: null });
    expect(fixed.json.targets[0]?.attributes?.memberOf).toEqual(['pg_read_all_stats', 'pg_signal_backend']);
  });

  it('as the cloud-admin role: what is true, each gap with its fix, and the fixes work', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const me = quoteIdent(admin.role);
    const v16 = (await serverVersionNum(f)) >= 160000;
    // Gaps this test makes: a database it may not enter, one owned by a role whose privileges it
    // lacks, a password about to expire and a connection limit below the pool.
    const closed = await f.createDatabase(f.name('closed'));
    await f.sql(`revoke connect on database ${quoteIdent(closed)} from public`);
    const owner = await f.createRole(f.name('owner'), 'nologin');
    const owned = await f.createDatabase(f.name('owned'), owner);
    await f.createRole(f.name('app')); // a login role it did not create (PostgreSQL 16+: no ADMIN OPTION on it)
    await f.sql(`alter role ${me} valid until ${quoteLiteral(new Date(Date.now() + 3 * 86_400_000).toISOString())} connection limit 2`);

    const run = await doctor(admin.url());
    const header = run.text.split('\n')[0];
    expect(header).toContain(`connected as ${JSON.stringify(admin.role)}`);
    expect(header).toContain('superuser no, createrole yes, member of pg_read_all_stats, pg_signal_backend');
    for (const name of ['read_all_sessions', 'signal_backends', 'alter_roles']) expect(checkOf(run, name)).toMatchObject({ ok: true, fix: null });

    const enter = checkOf(run, 'enter_databases');
    expect(enter.ok).toBe(false);
    expect(enter.detail).toContain(JSON.stringify(closed));
    expect(enter.fix?.split('; ')).toContain(`GRANT CONNECT ON DATABASE ${quoteIdent(closed)} TO ${me}`);
    expect(enter.neededBy).toEqual(['owned', 'offboard', 'revoke', 'access']);

    const revoke = checkOf(run, 'revoke_connect');
    expect(revoke.ok).toBe(false);
    expect(revoke.neededBy).toEqual(['disabled-users', 'logout --database --lock']);
    expect(revoke.detail).toContain(`${JSON.stringify(owned)} (owner ${JSON.stringify(owner)})`);
    // the connection database belongs to the bootstrap superuser: only a superuser can revoke there
    expect(revoke.detail).toMatch(/owned by a superuser, where only a superuser can revoke CONNECT: .*"postgres" \(owner /);
    expect(revoke.fix?.split('; ')).toContain(`GRANT ${quoteIdent(owner)} TO ${me}`);

    const own = checkOf(run, 'own_login');
    expect(own.ok).toBe(false);
    expect(own.detail).toMatch(/CONNECTION LIMIT 2, below database.poolSize \+ 2 = 5/);
    expect(own.detail).toMatch(/password expires in [23] days/);
    expect(own.fix).toMatch(new RegExp(`^ALTER ROLE ${escape(me)} CONNECTION LIMIT 5 VALID UNTIL '\\d{4}-\\d{2}-\\d{2}'$`));

    if (v16) {
      // PostgreSQL 16+: CREATEROLE alters only roles held WITH ADMIN OPTION; it created none of them
      const adminOption = checkOf(run, 'admin_option');
      expect(adminOption.ok).toBe(false);
      expect(adminOption.neededBy).toContain('logout --lock');
      expect(adminOption.fix).toMatch(/^GRANT ".+" TO .+ WITH ADMIN OPTION, INHERIT FALSE, SET FALSE/);
    } else {
      expect(names(run)).not.toContain('admin_option');
    }
    // whatever else is true: every failing check says why, and a fix when a grant can help
    for (const c of run.json.targets[0]!.checks.filter((x) => !x.ok)) expect(c.detail.length).toBeGreaterThan(0);
    // revoke_connect fails on the superuser's own database: disabled-users cannot do its whole job
    expect(run.code).toBe(1);

    // Run the fixes (only the statements about this test's objects: other tests' share the server).
    await runFix(f, ownStatements(f, enter.fix));
    await runFix(f, ownStatements(f, revoke.fix));
    await runFix(f, own.fix);
    const fixed = await doctor(admin.url());
    const enterAfter = checkOf(fixed, 'enter_databases');
    expect(enterAfter.ok || !enterAfter.detail.includes(f.prefix)).toBe(true);
    expect(checkOf(fixed, 'revoke_connect').detail).not.toContain(JSON.stringify(owned));
    expect(checkOf(fixed, 'revoke_connect').fix ?? '').not.toContain(owner);
    expect(checkOf(fixed, 'own_login')).toMatchObject({ ok: true, fix: null });
  });

  it('as the superuser: every check is ok and it exits 0', async () => {
    const run = await doctor(testDatabaseUrl());
    expect(run.code).toBe(0);
    const checks = run.json.targets[0]!.checks;
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(names(run)).toEqual(['read_all_sessions', 'signal_backends', 'alter_roles', 'enter_databases', 'revoke_connect', 'revoke_others_grants', 'own_login']);
    expect(run.json.targets[0]?.attributes?.superuser).toBe(true);
    expect(run.text.trimEnd().split('\n').at(-1)).toBe('target default: every configured policy can do its job');
    expect(run.text).not.toContain('MISSING');
  });

  it('PostgreSQL 16+: ADMIN OPTION on the roles a nologin policy reaches; the printed grant is enough and gives no privileges', async () => {
    const f = fixture();
    if ((await serverVersionNum(f)) < 160000) return;
    const admin = await createCloudAdmin(f);
    const app = [await f.createRole(f.name('app1')), await f.createRole(f.name('app2'))];
    const config = configFile({
      policies: [{ name: 'lockout', kind: 'disabled_role', disabledWhen: { roles: [f.name('app*')] }, match: { roles: [`${f.prefix}_app*`] }, actions: ['nologin'] }],
    });
    const run = await doctor(admin.url(), config);
    const check = checkOf(run, 'admin_option');
    expect(check.ok).toBe(false);
    expect(check.neededBy).toEqual(['lockout', 'logout --lock', 'offboard', 'passwd']);
    expect(check.detail).toContain('2 of them in reach of lockout');
    expect(check.fix).toBe(app.map((r) => `GRANT ${quoteIdent(r)} TO ${quoteIdent(admin.role)} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`).join('; '));
    expect(run.code).toBe(1);

    await runFix(f, check.fix);
    const fixed = await doctor(admin.url(), config);
    const after = checkOf(fixed, 'admin_option');
    // ok, or failing only for roles commands could meet (other tests' roles share the server)
    expect(after.ok || !after.neededBy.includes('lockout')).toBe(true);
    expect(fixed.text.split('\n')[0]).toMatch(/member of pg_read_all_stats, pg_signal_backend, ADMIN OPTION only on 2 roles$/);
    expect(fixed.code).toBe(0);
    // ADMIN without INHERIT or SET: the role may manage app1 but has none of its privileges
    const { rows } = await f.sql<{ admin: boolean; usage: boolean }>(
      "select pg_has_role($1, $2, 'MEMBER WITH ADMIN OPTION') as admin, pg_has_role($1, $2, 'USAGE') as usage",
      [admin.role, app[0]],
    );
    expect(rows[0]).toEqual({ admin: true, usage: false });
    // and the policy really can lock the role out with it
    const once = await cli(['--config', config, '--database-url', admin.url(), '--mode', 'enforce', '--json', '--log-level', 'error', 'run', '--once']);
    expect((JSON.parse(once.stdout) as { actions: { action: string; result: string }[] }).actions.map((a) => [a.action, a.result])).toEqual([
      ['nologin', 'done'],
      ['nologin', 'done'],
    ]);
  });

  it('quotes a hostile role name and database name in every fix, and the fixes run as printed', async () => {
    const f = fixture();
    const role = await f.createRole(f.name(`O'Brien "Zoë" Admin`));
    const login: TestLogin = { role, url: (database = 'postgres') => urlFor(database, { name: role, password: ROLE_PASSWORD }) };
    const closed = await f.createDatabase(f.name(`Ünï "db" 'x'`));
    await f.sql(`revoke connect on database ${quoteIdent(closed)} from public`);
    const me = `"${role.replace(/"/g, '""')}"`;
    const run = await doctor(login.url());
    expect(run.json.targets[0]?.role).toBe(role);
    expect(checkOf(run, 'read_all_sessions').fix).toBe(`GRANT pg_read_all_stats TO ${me}`);
    expect(checkOf(run, 'alter_roles').fix).toBe(`ALTER ROLE ${me} CREATEROLE`);
    const enter = checkOf(run, 'enter_databases');
    expect(enter.fix?.split('; ')).toContain(`GRANT CONNECT ON DATABASE "${closed.replace(/"/g, '""')}" TO ${me}`);
    expect(run.text).toContain(`connected as ${JSON.stringify(role)}`);
    expect(run.text).toContain(`        fix: ALTER ROLE ${me} CREATEROLE;`);

    for (const name of ['read_all_sessions', 'signal_backends', 'alter_roles']) await runFix(f, checkOf(run, name).fix);
    await runFix(f, ownStatements(f, enter.fix));
    const fixed = await doctor(login.url());
    for (const name of ['read_all_sessions', 'signal_backends', 'alter_roles']) expect(checkOf(fixed, name).ok).toBe(true);
    expect(checkOf(fixed, 'enter_databases').detail).not.toContain(JSON.stringify(closed));
  });

  it('an unreachable target is one failing connect check with no password, and exit 1', async () => {
    const port = await freePort();
    const url = `postgres://someone:${encodeURIComponent('s3cret-pw')}@127.0.0.1:${port}/postgres`;
    const run = await doctor(url);
    expect(run.code).toBe(1);
    expect(run.json.targets[0]).toMatchObject({ target: 'default', role: 'someone', server: null, attributes: null });
    expect(run.json.targets[0]?.checks).toEqual([
      { name: 'connect', ok: false, neededBy: expect.arrayContaining(EXAMPLE_POLICIES) as unknown, detail: expect.stringContaining(`127.0.0.1:${port}`) as unknown, fix: null },
    ]);
    expect(JSON.stringify(run.json) + run.text).not.toContain('s3cret-pw');
    expect(run.text).toContain('MISSING connect');
  });

  it('--target picks one of several targets; an unknown one exits 2', async () => {
    const f = fixture();
    const bare = await createBareRole(f);
    const config = configFile({
      targets: [
        { name: 'main', url: testDatabaseUrl() },
        { name: 'side', url: bare.url() },
      ],
      policies: [{ name: 'idle', kind: 'idle_session', maxIdle: '1h', targets: ['side'] }],
    });
    const all = await cli(['--config', config, '--json', 'doctor']);
    const json = JSON.parse(all.stdout) as DoctorJson;
    expect(json.targets.map((t) => [t.target, t.role])).toEqual([
      ['main', expect.any(String) as unknown],
      ['side', bare.role],
    ]);
    // the policy runs on "side" only: "main" has no policy, so no gap there stops one
    expect(json.targets[1]?.checks.find((c) => c.name === 'read_all_sessions')?.neededBy[0]).toBe('idle');
    expect(json.targets[0]?.checks.find((c) => c.name === 'read_all_sessions')?.neededBy[0]).toBe('sessions');
    expect(all.code).toBe(1);
    const main = await cli(['--config', config, '--json', 'doctor', '--target', 'main']);
    expect((JSON.parse(main.stdout) as DoctorJson).targets.map((t) => t.target)).toEqual(['main']);
    expect(main.code).toBe(0);
    expect((await cli(['--config', config, 'doctor', '--target', 'nope'])).code).toBe(2);
  });

  it('run logs each failing check once at start (warn, with its fix) and a summary, never a password', async () => {
    const f = fixture();
    const bare = await createBareRole(f);
    const port = await freePort();
    const env = isolatedEnv({ PGWARDEN_SERVER_HOST: '127.0.0.1', PGWARDEN_SERVER_PORT: String(port) });
    const config = loadConfig({ configFile: EXAMPLE, databaseUrl: bare.url() }, env);
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => lines.push(line) });
    const db = new TargetDb(config.targets[0]!, { connectTimeoutMs: 5000, statementTimeoutMs: 30_000, poolSize: 3 }, logger);
    let stop: (signal: string) => void = () => undefined;
    const daemon = await startDaemon({ config, targets: [db], logger, stopSignal: new Promise((resolve) => (stop = resolve)) });
    try {
      await waitFor(async () => Promise.resolve(lines.some((l) => l.includes('"component":"doctor"') && l.includes('"level":"info"') && !l.includes('"check"'))), 'the doctor summary');
    } finally {
      stop('test');
      await daemon.done;
      await db.end();
    }
    const doctorLines = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.component === 'doctor');
    const warned = doctorLines.filter((l) => l.level === 'warn');
    expect(warned.map((l) => l.check)).toEqual(expect.arrayContaining(['read_all_sessions', 'signal_backends', 'alter_roles']));
    expect(new Set(warned.map((l) => l.check)).size).toBe(warned.length);
    expect(warned.find((l) => l.check === 'read_all_sessions')).toMatchObject({
      target: 'default',
      fix: `GRANT pg_read_all_stats TO ${quoteIdent(bare.role)}`,
      neededBy: expect.arrayContaining(['idle-in-transaction']) as unknown,
    });
    // Gaps only a command would hit (say revoke_connect's logout --database --lock) are info, not warn.
    for (const l of doctorLines.filter((d) => d.level === 'info' && d.check !== undefined)) {
      expect((l.neededBy as string[]).some((n) => config.policies.some((p) => p.name === n))).toBe(false);
    }
    const summary = doctorLines.filter((l) => l.level === 'info' && l.check === undefined);
    expect(summary).toHaveLength(1);
    expect(summary[0]?.msg).toMatch(/configured policies cannot do all of their job: idle-in-transaction/);
    expect(lines.join('\n')).not.toContain(ROLE_PASSWORD);
  });
});

describe('assess (pure)', () => {
  const attrs = { name: 'w', superuser: false, createRole: true, inherit: true, canLogin: true, connectionLimit: -1, validUntil: null };
  const facts = (over: Partial<CapabilityFacts> = {}): CapabilityFacts => ({
    sessionRole: attrs,
    currentRole: attrs,
    memberOf: [],
    adminOnlyMemberOf: [],
    bootstrapRole: 'postgres',
    database: 'app',
    serverVersion: '16.4',
    serverVersionNum: 160004,
    now: 1_800_000_000,
    readAllStats: true,
    signalBackend: true,
    databases: [{ name: 'app', allowConnections: true, isTemplate: false, owner: 'w', ownerSuperuser: false, canConnect: true, ownerPrivileges: true }],
    superuserLogins: [],
    withoutAdminOption: [],
    grants: [],
    ...over,
  });
  const settingsOf = (policies: unknown[], exempt: Partial<DoctorSettings['exempt']> = {}): DoctorSettings => {
    const config = loadConfig({ configFile: configFile({ policies }) }, {});
    return { ...doctorSettings(config, 'default'), exempt: { ...config.settings.exempt, ...exempt } };
  };
  const check = (checks: Check[], name: string) => checks.find((c) => c.name === name);

  it('a member without inheritance is told WITH INHERIT TRUE on 16+, ALTER ROLE … INHERIT before', () => {
    const noinherit = { ...attrs, inherit: false };
    const s = settingsOf([{ name: 'idle', kind: 'idle_session', maxIdle: '1h' }]);
    const on16 = assess(facts({ currentRole: noinherit, memberOf: ['pg_read_all_stats'], readAllStats: false }), s);
    expect(check(on16, 'read_all_sessions')?.fix).toBe('GRANT pg_read_all_stats TO "w" WITH INHERIT TRUE');
    expect(check(on16, 'read_all_sessions')?.detail).toContain('without inheriting');
    const on15 = assess(facts({ currentRole: noinherit, memberOf: ['pg_read_all_stats'], readAllStats: false, serverVersionNum: 150004 }), s);
    expect(check(on15, 'read_all_sessions')?.fix).toBe('ALTER ROLE "w" INHERIT');
  });

  it('with exempt.superusers false, superusers in reach cannot be signalled or altered by a non-superuser', () => {
    const s = settingsOf(
      [
        { name: 'idle', kind: 'idle_session', maxIdle: '1h', match: { roles: ['app_*'] } },
        { name: 'dr', kind: 'disabled_role', disabledWhen: { nologin: true }, actions: ['nologin'] },
      ],
      { superusers: false },
    );
    const checks = assess(facts({ superuserLogins: ['boss', 'app_root'] }), s);
    expect(check(checks, 'signal_superusers')).toMatchObject({ ok: false, neededBy: ['idle'], fix: null });
    expect(check(checks, 'signal_superusers')?.detail).toContain('"app_root"');
    expect(check(checks, 'signal_superusers')?.detail).toContain('exempt.superusers: true');
    expect(check(checks, 'alter_roles')).toMatchObject({ ok: false, neededBy: ['dr'], fix: null });
    // with the default exemption, neither check concerns anyone
    const exempt = assess(facts({ superuserLogins: ['boss'] }), settingsOf([{ name: 'idle', kind: 'idle_session', maxIdle: '1h' }]));
    expect(check(exempt, 'signal_superusers')).toBeUndefined();
    expect(check(exempt, 'alter_roles')?.ok).toBe(true);
  });

  it('admin_option follows match and exemptions; command-only gaps do not name a policy', () => {
    const s = settingsOf([{ name: 'dr', kind: 'disabled_role', disabledWhen: { nologin: true }, match: { roles: ['app_*'] }, actions: ['nologin'] }], { roles: ['app_keep'] });
    const gaps = assess(facts({ withoutAdminOption: ['alice', 'app_keep', 'app_x'] }), s);
    expect(check(gaps, 'admin_option')).toMatchObject({
      ok: false,
      neededBy: ['dr', 'logout --lock', 'offboard', 'passwd'],
      fix: 'GRANT "app_x" TO "w" WITH ADMIN OPTION, INHERIT FALSE, SET FALSE',
    });
    const commandOnly = assess(facts({ withoutAdminOption: ['alice', 'app_keep'] }), s);
    expect(check(commandOnly, 'admin_option')).toMatchObject({ ok: false, neededBy: ['logout --lock', 'offboard', 'passwd'] });
    expect(check(commandOnly, 'admin_option')?.fix).toBe('GRANT "alice" TO "w" WITH ADMIN OPTION, INHERIT FALSE, SET FALSE; GRANT "app_keep" TO "w" WITH ADMIN OPTION, INHERIT FALSE, SET FALSE');
    expect(check(assess(facts({ serverVersionNum: 150004, withoutAdminOption: [] }), s), 'admin_option')).toBeUndefined();
  });

  it('revoke_others_grants: each grantor whose privileges it lacks, superusers and pg_database_owner without a grantable fix', () => {
    const s = settingsOf([{ name: 'dr', kind: 'disabled_role', disabledWhen: { nologin: true }, actions: ['revoke_privileges'] }]);
    const grant = { grantorSuperuser: false, grantorPrivileges: false, granteeSuperuser: false, entries: 2 };
    const checks = assess(
      facts({
        databases: [{ name: 'app', allowConnections: true, isTemplate: false, owner: 'dba', ownerSuperuser: false, canConnect: true, ownerPrivileges: false }],
        grants: [
          { ...grant, grantor: 'alice', grantee: 'app' },
          { ...grant, grantor: 'postgres', grantorSuperuser: true, grantee: 'app' },
          { ...grant, grantor: 'pg_database_owner', grantee: 'app' },
          { ...grant, grantor: 'bob', grantorPrivileges: true, grantee: 'app' },
          { ...grant, grantor: 'carol', grantee: 'pg_monitor' },
        ],
      }),
      s,
    );
    const c = check(checks, 'revoke_others_grants');
    expect(c).toMatchObject({ ok: false, neededBy: ['dr', 'offboard', 'revoke'], fix: 'GRANT "alice" TO "w"; GRANT "dba" TO "w"' });
    expect(c?.detail).toContain('"postgres" (2 privileges to 1 role; superuser: only a superuser can revoke what it granted)');
    expect(c?.detail).not.toContain('carol');
    // pg_database_owner cannot be granted: it stands for the connection database's owner, whose role can
    expect(c?.detail).toContain('"pg_database_owner" (2 privileges to 1 role; stands for the owner of database "app", "dba")');
  });

  it('own_login: expiry and connection limit below poolSize + 2, one ALTER ROLE', () => {
    const s = settingsOf([{ name: 'idle', kind: 'idle_session', maxIdle: '1h' }]);
    const expired = assess(facts({ sessionRole: { ...attrs, validUntil: 1_800_000_000 - 86_400 * 2, connectionLimit: 1 } }), s);
    expect(check(expired, 'own_login')).toMatchObject({ ok: false, fix: `ALTER ROLE "w" CONNECTION LIMIT 5 VALID UNTIL '2028-01-15'` });
    expect(check(expired, 'own_login')?.detail).toContain('password expired 2 days ago');
    const never = assess(facts({ sessionRole: { ...attrs, validUntil: '-infinity' } }), s);
    expect(check(never, 'own_login')?.detail).toContain('VALID UNTIL -infinity');
    const fine = assess(facts({ sessionRole: { ...attrs, validUntil: 'infinity', connectionLimit: 5 } }), s);
    expect(check(fine, 'own_login')).toMatchObject({ ok: true, fix: null });
    expect(check(fine, 'own_login')?.neededBy[0]).toBe('idle');
  });

  it('leaves out what nothing configured needs and no command needs', () => {
    const checks = assess(facts(), settingsOf([]));
    expect(checks.map((c) => c.name)).toEqual(['read_all_sessions', 'signal_backends', 'alter_roles', 'admin_option', 'enter_databases', 'revoke_connect', 'revoke_others_grants', 'own_login']);
    expect(checks.every((c) => c.ok)).toBe(true);
    const policies: Policy[] = [];
    expect(assess(facts(), { policies, exempt: { superusers: false, roles: [], applications: [] }, poolSize: 3 }).map((c) => c.name)).not.toContain('signal_superusers');
  });
});

function escape(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}
