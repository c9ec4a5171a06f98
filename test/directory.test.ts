/**
 * `disabled_role` driven by a real directory (issue 17): a throwaway OpenLDAP server, people and
 * groups seeded with ldapadd, real PostgreSQL roles with real sessions. pgwarden runs as the
 * cloud-admin role (CREATEROLE, pg_signal_backend, pg_read_all_stats; ADMIN OPTION on 16+), as
 * most users run it. A directory that is down, refuses the bind, finds nothing, or would disable
 * most roles at once must lock nobody out.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunOutput } from '../src/cli/run.js';
import type { RoleJson } from '../src/cli/roles.js';
import type { DoctorJson } from '../src/cli/doctor.js';
import pino from 'pino';
import { compileDirectories } from '../src/config/directories.js';
import { DirectoryWatcher } from '../src/directory/watcher.js';
import { Metrics } from '../src/metrics/registry.js';
import { cli, spawnCli } from './support/cli.js';
import { useConfigFiles } from './support/config-file.js';
import { startTestDaemon } from './support/daemon.js';
import { testDatabaseUrl, useFixture, waitFor, type Fixture } from './support/fixture.js';
import { canLogIn, createCloudAdmin, grantAdminOn, serverVersionNum, type TestLogin } from './support/roles.js';
import { BASE_DN, GROUPS_DN, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD, groupLdif, personLdif, startSlapd, type Slapd } from './support/slapd.js';

const fixture = useFixture('directory');
const writeConfig = useConfigFiles('directory');
let slapd: Slapd;
/** The bind password reaches pgwarden the way a Kubernetes Secret does: an environment variable. */
const PASSWORD_ENV = { PGWARDEN_DIRECTORY_CORP_BIND_PASSWORD: SERVICE_PASSWORD };

beforeAll(async () => {
  slapd = await startSlapd();
}, 60_000);
afterAll(async () => {
  await slapd?.destroy();
});

interface People {
  /** Role name → how the directory holds it. */
  readonly [role: string]: 'active' | 'disabled' | 'none';
}

/** Roles with these names (under the test's prefix), a person for each but 'none', and a group of the active ones in `group`. */
async function seed(f: Fixture, people: People, group: readonly string[]): Promise<{ admin: TestLogin; groupDn: string }> {
  const roles = Object.keys(people);
  for (const role of roles) await f.createRole(role);
  const ldif = roles.filter((r) => people[r] !== 'none').map((r) => personLdif(r, { disabled: people[r] === 'disabled' }));
  if (ldif.length > 0) await slapd.add(ldif.join('\n'));
  const cn = f.name('dbusers');
  await slapd.add(groupLdif(cn, group));
  const admin = await createCloudAdmin(f);
  if ((await serverVersionNum(f)) >= 160000) await grantAdminOn(f, admin, roles);
  return { admin, groupDn: `cn=${cn},${GROUPS_DN}` };
}

function directory(f: Fixture, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'corp',
    url: slapd.url,
    bindDN: SERVICE_DN,
    baseDN: PEOPLE_DN,
    userFilter: '(objectClass=inetOrgPerson)',
    disabledFilter: '(employeeType=disabled)',
    roleAttribute: 'uid',
    roles: [`${f.prefix}_*`],
    refresh: '1s',
    timeout: '5s',
    ...overrides,
  };
}

function config(f: Fixture, when: Record<string, unknown>, overrides: { directory?: Record<string, unknown>; mode?: string; safety?: unknown } = {}): string {
  return writeConfig({
    mode: overrides.mode ?? 'enforce',
    ...(overrides.safety ? { safety: overrides.safety } : {}),
    directories: [directory(f, overrides.directory)],
    policies: [
      {
        name: 'left-the-company',
        kind: 'disabled_role',
        schedule: '* * * * * *',
        disabledWhen: { directory: { name: 'corp', ...when } },
        // revoke_connect as a cloud admin is the lockout tests' business (it is not the databases' owner here).
        actions: ['nologin', 'terminate'],
      },
    ],
  });
}

async function runOnce(file: string, admin: TestLogin, env: NodeJS.ProcessEnv = PASSWORD_ENV) {
  const result = await cli(['--config', file, '--database-url', admin.url(), '--json', 'run', '--once'], env);
  return { ...result, out: (result.stdout ? JSON.parse(result.stdout) : { violations: [], actions: [] }) as RunOutput };
}

async function clientSessions(f: Fixture, role: string): Promise<number> {
  const { rows } = await f.sql<{ n: number }>("select count(*)::int as n from pg_stat_activity where usename = $1 and backend_type = 'client backend'", [role]);
  return rows[0]?.n ?? 0;
}

describe('disabled_role with disabledWhen.directory', () => {
  it('locks out the disabled person and the one removed from the group, leaves the active ones, and a role with no entry only with missing: true', async () => {
    const f = fixture();
    const [alice, bob, carol, dave] = ['alice', 'bob', 'carol', 'dave'].map((n) => f.name(n)) as [string, string, string, string];
    const { admin, groupDn } = await seed(f, { [alice]: 'active', [bob]: 'disabled', [carol]: 'active', [dave]: 'none' }, [alice, bob, carol]);
    const sessions = await Promise.all([alice, bob, carol, dave].map((role) => f.openSession({ role, state: 'idle' })));

    const first = await runOnce(config(f, { disabled: true, notInGroup: groupDn }), admin);
    expect(first.stderr).not.toMatch(/"level":"(error|warn)"/);
    expect(first.code).toBe(0);
    expect(first.out.violations.map((v) => [v.role, v.condition])).toEqual([[bob, 'directory_disabled']]);
    expect(first.out.violations[0]?.reason).toMatch(new RegExp(`^directory corp: uid=${bob},${PEOPLE_DN} matches disabledFilter \\(answer \\d+s old\\)$`));
    expect(first.out.actions.filter((a) => a.role === bob).map((a) => [a.action, a.result])).toEqual([
      ['nologin', 'done'],
      ['terminate', 'done'],
    ]);
    expect(await canLogIn(f, bob)).toBe(false);
    await waitFor(async () => (await clientSessions(f, bob)) === 0, `${bob}'s session to end`);
    for (const role of [alice, carol, dave]) expect(await canLogIn(f, role)).toBe(true);
    expect(await f.alive(sessions[0]!.pid)).toBe(true);

    // HR removes carol from the database-users group.
    await slapd.modify(`dn: ${groupDn}\nchangetype: modify\ndelete: member\nmember: uid=${carol},${PEOPLE_DN}\n`);
    const second = await runOnce(config(f, { disabled: true, notInGroup: groupDn }), admin);
    expect(second.code).toBe(0);
    const carolViolation = second.out.violations.find((v) => v.role === carol);
    expect(carolViolation?.condition).toBe('directory_not_in_group');
    expect(carolViolation?.reason).toContain(`uid=${carol},${PEOPLE_DN} is not a member of ${groupDn}`);
    expect(await canLogIn(f, carol)).toBe(false);
    await waitFor(async () => (await clientSessions(f, carol)) === 0, `${carol}'s session to end`);
    // dave has no entry, but nobody asked about missing people.
    expect(await canLogIn(f, dave)).toBe(true);

    const third = await runOnce(config(f, { missing: true }), admin);
    expect(third.code).toBe(0);
    expect(third.out.violations.map((v) => [v.role, v.condition])).toEqual([[dave, 'directory_missing']]);
    expect(await canLogIn(f, dave)).toBe(false);
    await waitFor(async () => (await clientSessions(f, dave)) === 0, `${dave}'s session to end`);
    expect(await canLogIn(f, alice)).toBe(true);
    expect(await f.alive(sessions[0]!.pid)).toBe(true);

    // `roles` shows each verdict; the nested-group form (a filter) is read as a group too.
    const roles = await cli(['--config', config(f, { disabled: true, missing: true, notInGroup: groupDn }), '--database-url', admin.url(), '--json', 'roles'], PASSWORD_ENV);
    const byRole = new Map((JSON.parse(roles.stdout) as RoleJson[]).map((r) => [r.role, r]));
    expect(byRole.get(alice)?.directory).toBe('active');
    expect(byRole.get(alice)?.disabled).toBeNull();
    // Locked out and without sessions: no longer judged (its lockout is done).
    expect(byRole.get(bob)?.directory).toBeNull();
  });

  it('a role name matches its entry whatever the case, and roles outside `roles` are never judged', async () => {
    const f = fixture();
    const mixed = f.name('Mixed Case');
    const outside = `pgw_outside_${f.prefix.slice(-6)}`;
    await f.createRole(outside);
    const { admin } = await seed(f, { [mixed]: 'none' }, []);
    await slapd.add(personLdif(mixed.toLowerCase(), { disabled: true }));
    const out = await runOnce(config(f, { disabled: true, missing: true }), admin);
    expect(out.out.violations.map((v) => [v.role, v.condition])).toEqual([[mixed, 'directory_disabled']]);
    expect(await canLogIn(f, mixed)).toBe(false);
    // No entry, but outside the directory's `roles`: untouched.
    expect(await canLogIn(f, outside)).toBe(true);
    // pgwarden's own role is covered by the glob and has no entry: never acted on.
    expect(out.out.actions.some((a) => a.role === admin.role)).toBe(false);
    expect(await canLogIn(f, admin.role)).toBe(true);
  });

  it('as a superuser too: the disabled person is locked out, and a superuser with no entry is exempt', async () => {
    const f = fixture();
    const [gone, boss, stays] = [f.name('gone'), f.name('boss'), f.name('stays')];
    await seed(f, { [gone]: 'disabled', [stays]: 'active' }, []);
    await f.createRole(boss, 'superuser');
    const session = await f.openSession({ role: gone, state: 'idle in transaction' });
    const result = await cli(['--config', config(f, { disabled: true, missing: true }), '--database-url', testDatabaseUrl(), '--json', 'run', '--once'], PASSWORD_ENV);
    const out = JSON.parse(result.stdout) as RunOutput;
    expect(result.code).toBe(0);
    // The cloud admin seed() made has no entry: as the superuser runs, it is just another missing person.
    expect(out.violations.map((v) => [v.role, v.condition])).toEqual([
      [f.name('cloudadmin'), 'directory_missing'],
      [gone, 'directory_disabled'],
    ]);
    expect(await canLogIn(f, gone)).toBe(false);
    await waitFor(async () => !(await f.alive(session.pid)), `${gone}'s session to end`);
    // The superuser has no entry either: exempt.superusers keeps it out of reach, and out of the covered roles.
    expect(await canLogIn(f, boss)).toBe(true);
    expect(await canLogIn(f, stays)).toBe(true);
  });

  it('a policy that asks only about the group catches a person both disabled and out of it; a group written as a filter works too', async () => {
    const f = fixture();
    const [kept, leaver, outsider] = [f.name('kept'), f.name('leaver'), f.name('outsider')];
    const { admin, groupDn } = await seed(f, { [kept]: 'active', [leaver]: 'disabled', [outsider]: 'none' }, [kept]);
    await slapd.add(personLdif(outsider, { department: f.prefix }));
    await slapd.modify(`dn: uid=${kept},${PEOPLE_DN}\nchangetype: modify\nadd: departmentNumber\ndepartmentNumber: ${f.prefix}\n`);
    // Disabled and out of the group (AD's usual offboarding): the group condition alone catches it.
    const byGroup = await runOnce(config(f, { notInGroup: groupDn }, { mode: 'dry-run' }), admin);
    expect(byGroup.code).toBe(0);
    expect(byGroup.out.violations.map((v) => [v.role, v.condition])).toEqual([
      [outsider, 'directory_not_in_group'],
      [leaver, 'directory_not_in_group'],
    ].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)));
    // As a filter (what AD's LDAP_MATCHING_RULE_IN_CHAIN is): its members are the people matching it.
    const byFilter = await runOnce(config(f, { notInGroup: `(departmentNumber=${f.prefix})` }, { mode: 'dry-run' }), admin);
    expect(byFilter.code).toBe(0);
    expect(byFilter.out.violations.map((v) => [v.role, v.condition, v.reason.replace(/ \(answer .*\)$/, '')])).toEqual([
      [leaver, 'directory_not_in_group', `directory corp: uid=${leaver},${PEOPLE_DN} is not a member of the group filter (departmentNumber=${f.prefix})`],
    ]);
    expect(byFilter.out.actions.map((a) => [a.action, a.role, a.result])).toEqual([['nologin', leaver, 'planned']]);
  });

  describe('a directory that cannot be trusted decides nothing', () => {
    async function expectNobodyLockedOut(f: Fixture, roles: readonly string[], result: Awaited<ReturnType<typeof runOnce>>, error: RegExp) {
      expect(result.code).toBe(1);
      expect(result.out.actions).toEqual([]);
      expect(result.out.errors?.join('\n')).toMatch(error);
      expect(`${result.stdout}${result.stderr}`).not.toContain(SERVICE_PASSWORD);
      for (const role of roles) expect(await canLogIn(f, role)).toBe(true);
    }

    it('stopped, a wrong bind password, a search that finds nothing, or 80 % of the roles disabled at once: nothing is locked, exit 1', async () => {
      const f = fixture();
      const names = Array.from({ length: 10 }, (_, i) => f.name(`p${i}`));
      const people: Record<string, 'active' | 'disabled'> = {};
      names.forEach((n, i) => (people[n] = i < 8 ? 'disabled' : 'active'));
      const { admin } = await seed(f, people, []);
      await f.openSession({ role: names[0]!, state: 'idle' });

      // 8 of 10 covered roles at once: more than safety.maxFraction (0.5) and safety.minActions (5).
      const tooMany = await runOnce(config(f, { disabled: true, missing: true }), admin);
      await expectNobodyLockedOut(f, names, tooMany, /directory corp: answer refused: on target default, policy left-the-company would disable 8 of the 10 covered roles at once/);

      // The bind password wrong: refused, and the password appears nowhere.
      const wrong = await runOnce(config(f, { missing: true }), admin, { PGWARDEN_DIRECTORY_CORP_BIND_PASSWORD: `${SERVICE_PASSWORD}-wrong` });
      await expectNobodyLockedOut(
        f,
        names,
        wrong,
        /directory corp: ldap:\/\/127\.0\.0\.1:\d+: bind as "cn=pgwarden,ou=services,dc=corp,dc=example" refused \(invalid credentials; the password from env PGWARDEN_DIRECTORY_CORP_BIND_PASSWORD\)/,
      );

      // A roleAttribute every entry has but that names no role (cn where uid was meant): every
      // covered role reads as missing, which is never taken for everyone leaving at once.
      const wrongAttribute = await runOnce(config(f, { missing: true }, { directory: { roleAttribute: 'objectClass' } }), admin);
      await expectNobodyLockedOut(f, names, wrongAttribute, /would disable 10 of the 10 covered roles at once/);

      // A baseDN that is not there.
      const noBase = await runOnce(config(f, { missing: true }, { directory: { baseDN: `ou=peple,${BASE_DN}` } }), admin);
      await expectNobodyLockedOut(f, names, noBase, /baseDN "ou=peple,dc=corp,dc=example" does not exist, or "cn=pgwarden,ou=services,dc=corp,dc=example" may not see it/);

      // A search that finds nobody (a wrong userFilter, an emptied OU): an outage, not a mass departure.
      const empty = await runOnce(config(f, { missing: true }, { directory: { userFilter: '(employeeNumber=nobody-has-this)' } }), admin);
      await expectNobodyLockedOut(f, names, empty, /found 0 entries with a uid under baseDN "ou=people,dc=corp,dc=example" matching userFilter \(employeeNumber=nobody-has-this\), fewer than minEntries \(1\)/);

      // Stopped: every URL tried (failover), none answers.
      await slapd.stop();
      try {
        const down = await runOnce(config(f, { missing: true }, { directory: { url: `${slapd.url} ${slapd.url.replace(/:(\d+)$/, ':1')}` } }), admin);
        await expectNobodyLockedOut(f, names, down, /ECONNREFUSED/);
      } finally {
        await slapd.start();
      }
      // Back: the same configuration acts (2 disabled of 10 is within the breaker).
      for (const n of names.slice(2, 8)) await slapd.modify(`dn: uid=${n},${PEOPLE_DN}\nchangetype: modify\ndelete: employeeType\n`);
      const back = await runOnce(config(f, { disabled: true }), admin);
      expect(back.code).toBe(0);
      expect(back.out.violations.map((v) => v.role)).toEqual(names.slice(0, 2));
      expect(await canLogIn(f, names[0]!)).toBe(false);
      await waitFor(async () => (await clientSessions(f, names[0]!)) === 0, 'the session of the disabled person to end');
    });

    it('an empty group, or a group no person is in, fails the search: it would put everyone "not in group"', async () => {
      const f = fixture();
      const names = [f.name('a'), f.name('b')];
      const { admin, groupDn } = await seed(f, { [names[0]!]: 'active', [names[1]!]: 'active' }, []);
      const empty = await runOnce(config(f, { notInGroup: groupDn }), admin);
      await expectNobodyLockedOut(f, names, empty, /group "cn=.*" \(notInGroup\) has none of the \d+ people found as a member/);
      const missingGroup = await runOnce(config(f, { notInGroup: `cn=${f.name('nosuch')},${GROUPS_DN}` }), admin);
      await expectNobodyLockedOut(f, names, missingGroup, /\(notInGroup\) does not exist/);
      const noMatch = await runOnce(config(f, { notInGroup: '(departmentNumber=nobody-has-this)' }), admin);
      await expectNobodyLockedOut(f, names, noMatch, /has none of the \d+ people found as a member/);
    });

    it('a refused answer holds back every policy that asks the directory, not only the one that refused it', async () => {
      const f = fixture();
      const names = Array.from({ length: 10 }, (_, i) => f.name(`q${i}`));
      const people: Record<string, 'active' | 'disabled'> = {};
      names.forEach((n, i) => (people[n] = i < 8 ? 'disabled' : 'active'));
      const { admin, groupDn } = await seed(f, people, names.slice(0, 9));
      const policy = (name: string, when: Record<string, unknown>) => ({ name, kind: 'disabled_role', disabledWhen: { directory: { name: 'corp', ...when } }, actions: ['nologin', 'terminate'] });
      const file = writeConfig({
        mode: 'enforce',
        directories: [directory(f)],
        // The first would disable 8 of 10 at once and refuses the answer; the second (1 of 10) must not act on it either.
        policies: [policy('by-status', { disabled: true }), policy('by-group', { notInGroup: groupDn })],
      });
      const result = await runOnce(file, admin);
      await expectNobodyLockedOut(f, names, result, /policy by-status would disable 8 of the 10 covered roles at once/);
      expect(result.out.violations).toEqual([]);
    });

    it('a server that accepts and never answers uses only its share of the timeout: the next URL answers', async () => {
      const f = fixture();
      const [alice, gone] = [f.name('alice'), f.name('gone')];
      const { admin } = await seed(f, { [alice]: 'active', [gone]: 'disabled' }, []);
      const sockets: Socket[] = [];
      const hung = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
      const hungUrl = `ldap://127.0.0.1:${(hung.address() as AddressInfo).port}`;
      try {
        const started = Date.now();
        const failover = await runOnce(config(f, { disabled: true }, { directory: { url: `${hungUrl} ${slapd.url}`, timeout: '4s' } }), admin);
        expect(failover.code).toBe(0);
        expect(failover.out.violations.map((v) => v.role)).toEqual([gone]);
        expect(failover.stderr).toMatch(/directory search failed over: ldap:\/\/127\.0\.0\.1:\d+: timed out after 2\.0s; a later URL answered/);
        expect(Date.now() - started).toBeLessThan(10_000);
        // Alone, it times out within the timeout and decides nothing.
        const alone = await runOnce(config(f, { disabled: true, missing: true }, { directory: { url: hungUrl, timeout: '2s' } }), admin);
        expect(alone.code).toBe(1);
        expect(alone.out.errors?.join('\n')).toMatch(/directory corp: ldap:\/\/127\.0\.0\.1:\d+: timed out after 2\.0s/);
        expect(await canLogIn(f, alice)).toBe(true);
        // A stop does not wait for a hung search (shutdown has its own timeout).
        const [slow] = compileDirectories([directory(f, { url: hungUrl, timeout: '30s' })], PASSWORD_ENV);
        const watcher = new DirectoryWatcher(slow!, [], { metrics: new Metrics({ sessionLabels: [], maxRoleSeries: 10 }), log: pino({ level: 'silent' }), clock: Date.now });
        watcher.start();
        await new Promise((resolve) => setTimeout(resolve, 300));
        const stopping = Date.now();
        await watcher.stop();
        expect(Date.now() - stopping).toBeLessThan(1000);
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => hung.close(resolve));
      }
    });

    it('an answer older than three refresh periods (a refresh that hangs) decides nothing', async () => {
      const f = fixture();
      await slapd.add(personLdif(f.name('someone')));
      let now = Date.now();
      const metrics = new Metrics({ sessionLabels: [], maxRoleSeries: 10 });
      const [config] = compileDirectories([directory(f)], PASSWORD_ENV);
      const watcher = new DirectoryWatcher(config!, [], { metrics, log: pino({ level: 'silent' }), clock: () => now });
      expect(await watcher.refresh()).toBe(true);
      expect(watcher.view('default/p').answer?.entries).toBeGreaterThanOrEqual(1);
      expect(await metrics.registry.getSingleMetricAsString('pgwarden_directory_up')).toMatch(/directory="corp"\} 1$/m);
      now += 2_900;
      expect(watcher.view('default/p').answer).toBeDefined();
      now += 200;
      const stale = watcher.view('default/p');
      expect(stale.answer).toBeUndefined();
      expect(stale.problem).toMatch(/^its last answer is 3s old, older than three refresh periods$/);
      expect(await metrics.registry.getSingleMetricAsString('pgwarden_directory_up')).toMatch(/directory="corp"\} 0$/m);
    });

    it('the daemon: pgwarden_directory_up 0 while the directory is down and nobody is locked out; back, the next refresh acts', async () => {
      const f = fixture();
      const [alice, bob] = [f.name('alice'), f.name('bob')];
      const { admin } = await seed(f, { [alice]: 'active', [bob]: 'active' }, []);
      const daemon = await startTestDaemon(config(f, { disabled: true, missing: true }), admin.url(), PASSWORD_ENV);
      try {
        const metric = (name: string) => async () => new RegExp(`^${name}\\{directory="corp"\\} (\\S+)$`, 'm').exec(await daemon.metrics())?.[1];
        await waitFor(async () => (await metric('pgwarden_directory_up')()) === '1', 'the directory to be up');
        expect(Number(await metric('pgwarden_directory_entries')())).toBeGreaterThanOrEqual(2);
        expect(Number(await metric('pgwarden_directory_last_success_timestamp_seconds')())).toBeGreaterThan(Date.now() / 1000 - 60);
        await slapd.stop();
        try {
          await waitFor(async () => (await metric('pgwarden_directory_up')()) === '0', 'the directory to be down', 15_000);
          // Several policy ticks with the directory down: `missing: true` must not read an outage as "everyone left".
          const ticks = await waitFor(async () => {
            const m = /^pgwarden_policy_last_success_timestamp_seconds\{target="default",policy="left-the-company"\} (\S+)$/m.exec(await daemon.metrics());
            return m && Number(m[1]) > Date.now() / 1000 - 1.5 ? m[1] : undefined;
          }, 'a policy run during the outage');
          expect(ticks).toBeDefined();
          for (const role of [alice, bob]) expect(await canLogIn(f, role)).toBe(true);
          const errors = daemon.log().filter((l) => l.component === 'directory' && l.level === 'error');
          expect(errors.length).toBeGreaterThan(0);
          expect(String(errors[0]?.msg)).toMatch(/directory search failed: .*ECONNREFUSED.*the directory decides nothing until a search succeeds/);
        } finally {
          await slapd.start();
        }
        await slapd.modify(`dn: uid=${bob},${PEOPLE_DN}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n`);
        await waitFor(async () => !(await canLogIn(f, bob)), `${bob} to be locked out once the directory is back`, 20_000);
        expect(await metric('pgwarden_directory_up')()).toBe('1');
        expect(await canLogIn(f, alice)).toBe(true);
        expect(JSON.stringify(daemon.log())).not.toContain(SERVICE_PASSWORD);
      } finally {
        await daemon.stop();
      }
    });
  });

  it('reads 2,500 people over several pages (the server gives at most 1,000 a page) and binds over ldaps with the test CA; a wrong CA is refused', async () => {
    const f = fixture();
    const bulk = f.name('bulk');
    const people = Array.from({ length: 2500 }, (_, i) => personLdif(`${bulk}${String(i).padStart(4, '0')}`));
    await slapd.add(people.join('\n'));
    const last = `${bulk}2499`;
    const { admin } = await seed(f, { [last]: 'none' }, []);

    // Without paging the server refuses to return them all (size limit exceeded, ldapsearch's exit 4).
    const unpaged = await new Promise<number | null>((resolve) =>
      execFile('ldapsearch', ['-x', '-H', slapd.url, '-D', SERVICE_DN, '-w', SERVICE_PASSWORD, '-b', PEOPLE_DN, '(objectClass=inetOrgPerson)', '1.1'], { maxBuffer: 1 << 26 }, (err) =>
        resolve(err ? ((err as { code?: number }).code ?? null) : 0),
      ),
    );
    expect(unpaged).toBe(4);
    const doctor = await cli(['--config', config(f, { missing: true }), '--database-url', admin.url(), '--json', 'doctor'], PASSWORD_ENV);
    const check = (JSON.parse(doctor.stdout) as DoctorJson).targets[0]?.checks.find((c) => c.name === 'directory');
    expect(check?.ok).toBe(true);
    const entries = Number(/(\d+) entries/.exec(check?.detail ?? '')?.[1]);
    expect(entries).toBeGreaterThanOrEqual(2500);
    // The one covered login role here is the bulk person's (pgwarden's own is never covered).
    expect(check?.detail).toMatch(/^directory corp: bound and searched in \d+ ms, \d+ entries; of 1 covered login roles, every covered role has an entry; of those with an entry, 0 disabled$/);

    const tls = { url: slapd.ldapsUrl, tls: { caFile: slapd.caFile } };
    const viaLdaps = await runOnce(config(f, { missing: true }, { directory: tls }), admin);
    expect(viaLdaps.code).toBe(0);
    // Found on the third page: not missing.
    expect(viaLdaps.out.violations).toEqual([]);
    expect(await canLogIn(f, last)).toBe(true);

    const wrongCa = await runOnce(config(f, { missing: true }, { directory: { ...tls, tls: { caFile: slapd.wrongCaFile } } }), admin);
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.out.errors?.join('\n')).toMatch(/ldaps:\/\/127\.0\.0\.1:\d+: .*(certificate|self.signed|SELF_SIGNED)/i);
    expect(wrongCa.out.actions).toEqual([]);
    expect(await canLogIn(f, last)).toBe(true);
  });

  it("the README's OpenLDAP example works against this server as written (its URL, CA and roles pointed at the test's)", async () => {
    const f = fixture();
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const block = /\*\*OpenLDAP\*\*[^\n]*\n```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const example = parseYaml(block ?? '') as { directories: Record<string, unknown>[]; policies: Record<string, unknown>[] };
    const [corp] = example.directories;
    expect(corp).toMatchObject({ name: 'corp', bindDN: SERVICE_DN, baseDN: PEOPLE_DN });
    // A hundred people (the example's minEntries), the group it names, and the test's roles.
    const [member, leaver, gone] = [f.name('member'), f.name('leaver'), f.name('gone')];
    const crowd = Array.from({ length: 100 }, (_, i) => personLdif(`${f.prefix}crowd${i}`));
    await slapd.add([...crowd, personLdif(member), personLdif(leaver, { disabled: true })].join('\n'));
    const groupDn = `cn=db-users,${GROUPS_DN}`;
    expect(JSON.stringify(example.policies)).toContain(groupDn);
    await slapd.add(groupLdif('db-users', [member, leaver])).catch(async () => {
      await slapd.modify(`dn: ${groupDn}\nchangetype: modify\nadd: member\nmember: uid=${member},${PEOPLE_DN}\nmember: uid=${leaver},${PEOPLE_DN}\n`);
    });
    for (const role of [member, leaver, gone]) await f.createRole(role);
    const admin = await createCloudAdmin(f);
    if ((await serverVersionNum(f)) >= 160000) await grantAdminOn(f, admin, [member, leaver, gone]);
    const asTested = { ...example, directories: [{ ...corp, url: slapd.ldapsUrl, tls: { caFile: slapd.caFile }, roles: [`${f.prefix}_*`] }] };
    const result = await cli(['--config', writeConfig(asTested), '--database-url', admin.url(), '--json', 'plan'], PASSWORD_ENV);
    const out = JSON.parse(result.stdout) as RunOutput;
    expect(result.code).toBe(0);
    expect(out.mode).toBe('dry-run');
    // pgwarden's own role has no entry either, and is never acted on.
    expect(out.violations.map((v) => [v.role, v.condition])).toEqual([
      [gone, 'directory_missing'],
      [leaver, 'directory_disabled'],
    ]);
  });

  it('the bind password from a file, redacted in config check; bad directory keys exit 2 naming the key', async () => {
    const f = fixture();
    const secretFile = join(slapd.dir, 'bind-password');
    writeFileSync(secretFile, `${SERVICE_PASSWORD}\n`);
    const inFile = writeConfig({ directories: [directory(f, { bindPasswordFile: secretFile })], policies: [] });
    const check = await spawnCli(['--config', inFile, 'config', 'check']);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain(secretFile);
    expect(check.stdout).not.toContain(SERVICE_PASSWORD);
    const inline = writeConfig({ directories: [directory(f, { bindPassword: SERVICE_PASSWORD })], policies: [] });
    const shown = await spawnCli(['--config', inline, 'config', 'check']);
    expect(shown.stdout).toMatch(/bindPassword: "\*\*\*"/);
    expect(shown.stdout).not.toContain(SERVICE_PASSWORD);

    const bad = async (doc: unknown, message: RegExp) => {
      const result = await spawnCli(['--config', writeConfig(doc), 'config', 'check'], PASSWORD_ENV);
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toContain(SERVICE_PASSWORD);
    };
    const policy = (when: unknown) => ({ name: 'p', kind: 'disabled_role', disabledWhen: { directory: when } });
    await bad({ directories: [directory(f)], policies: [policy({ name: 'hr' })] }, /policies\[0\]\.disabledWhen\.directory\.name: "hr" is not a configured directory \(corp\)/);
    await bad({ directories: [directory(f, { disabledFilter: undefined })], policies: [policy({ name: 'corp', disabled: true })] }, /policies\[0\]\.disabledWhen\.directory\.disabled: directory "corp" has no disabledFilter/);
    await bad({ directories: [directory(f, { url: 'http://ldap.example' })], policies: [] }, /directories\[0\]\.url: "http:\/\/ldap\.example" is not an ldap:\/\/ or ldaps:\/\/ URL/);
    await bad({ directories: [directory(f, { userFilter: 'objectClass=person' })], policies: [] }, /directories\[0\]\.userFilter: .* must be an LDAP filter in parentheses/);
    await bad({ directories: [directory(f, { bindPassword: SERVICE_PASSWORD, bindPasswordFile: secretFile })], policies: [] }, /directories\[0\]\.bindPasswordFile: set either bindPassword or bindPasswordFile, not both/);
    const noPassword = await spawnCli(['--config', writeConfig({ directories: [directory(f)], policies: [] }), 'config', 'check']);
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toMatch(/directories\[0\]\.bindPassword: is required with bindDN \(set PGWARDEN_DIRECTORY_CORP_BIND_PASSWORD/);
    await bad({ directories: [directory(f, { minEntries: 0, bindPassword: 'x' })], policies: [] }, /directories\[0\]\.minEntries: 0 is not a whole number of at least 1/);
    await bad({ directories: [directory(f, { url: `ldap://admin:${SERVICE_PASSWORD}@ldap.example` })], policies: [] }, /directories\[0\]\.url: must not hold a user or password/);
    await bad({ directories: [directory(f, { disabledFilter: '(&(employeeType=disabled)' })], policies: [] }, /directories\[0\]\.disabledFilter: "\(&\(employeeType=disabled\)" has unbalanced parentheses/);
    await bad({ directories: [directory(f), directory(f, { name: 'CORP' })], policies: [] }, /directories\[1\]\.name: "CORP" takes its password from PGWARDEN_DIRECTORY_CORP_BIND_PASSWORD, as directories\[0\] does/);
    await bad({ directories: [directory(f)], policies: [policy({ name: 'corp', notInGroup: 'db-users' })] }, /policies\[0\]\.disabledWhen\.directory\.notInGroup: "db-users" is neither a group DN/);
    await bad({ directories: [directory(f)], policies: [policy({ name: 'corp', notInGroup: '(memberOf=cn=x' })] }, /policies\[0\]\.disabledWhen\.directory\.notInGroup: "\(memberOf=cn=x" has unbalanced parentheses/);
  });
});
