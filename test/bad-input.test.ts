/**
 * Bad input, table-driven: a clear one-line error and exit 2, never a stack trace; hostile role
 * names are quoted correctly in every command, never injected.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { clientConfig } from '../src/db/pool.js';
import { quoteIdent, quoteLiteral } from '../src/db/quote.js';
import { scramVerifier } from '../src/db/scram.js';
import { cli, spawnCli } from './support/cli.js';
import { testDatabaseUrl, useFixture } from './support/fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'pgwarden-badinput-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const path = join(dir, `c${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

const idle = 'name: a\n    kind: idle_session\n    maxIdle: 5m';

describe('bad configuration and arguments: exit 2, one line, no stack trace', () => {
  it.each<[string, string[], RegExp]>([
    ['malformed YAML', ['--config', file('policies: [ {name: a, kind: idle_session\n'), 'plan'], /not valid YAML or JSON/],
    ['a tab-indented YAML', ['--config', file('mode:\n\t- x\n'), 'plan'], /not valid YAML or JSON|mode: /],
    ['an unknown key', ['--config', file('mode: dry-run\nmodes: enforce\n'), 'plan'], /^pgwarden: modes: unknown key/],
    ['a wrong type', ['--config', file('exempt:\n  superusers: sometimes\n'), 'plan'], /^pgwarden: exempt\.superusers: /],
    ['a wrong type in a policy', ['--config', file(`policies:\n  - ${idle}\n    maxActionsPerRun: many\n`), 'plan'], /^pgwarden: policies\[0\]\.maxActionsPerRun: "many" is not a whole number/],
    ['a bad duration', ['--config', file('policies:\n  - name: a\n    kind: idle_session\n    maxIdle: 5 minutes\n'), 'plan'], /^pgwarden: policies\[0\]\.maxIdle: "5 minutes" is not a duration/],
    ['a bad cron', ['--config', file(`policies:\n  - ${idle}\n    schedule: "every minute"\n`), 'plan'], /^pgwarden: policies\[0\]\.schedule: "every minute" is not a cron expression/],
    ['an unknown policy kind', ['--config', file('policies:\n  - name: a\n    kind: idle_sessions\n'), 'plan'], /^pgwarden: policies\[0\]\.kind: "idle_sessions" is not one of/],
    ['duplicate policy names', ['--config', file(`policies:\n  - ${idle}\n  - ${idle}\n`), 'plan'], /^pgwarden: policies\[1\]\.name: "a" is already the name of policies\[0\]/],
    ['an empty policy list for run', ['--config', file('policies: []\n'), 'run', '--once'], /^pgwarden: policies: none configured/],
    ['an empty policy list for plan', ['--config', file('mode: dry-run\n'), 'plan'], /^pgwarden: policies: none configured/],
    ['an invalid URL', ['--database-url', 'mysql://root:pw@db/x', 'sessions'], /^pgwarden: --database-url: must be a postgres:\/\/ or postgresql:\/\/ URL/],
    ['a URL with a space', ['--database-url', 'postgres://a b@db/x', 'sessions'], /^pgwarden: --database-url: not a well-formed URL: /],
    ['a bad --expiring', ['roles', '--expiring', '2 weeks'], /^pgwarden: --expiring: "2 weeks" is not a duration/],
    ['a bad --valid-until', ['passwd', 'x', '--valid-until', 'soon'], /^pgwarden: --valid-until: "soon" is not a timestamp/],
    ['a bad --lock value', ['logout', '--database', 'postgres', '--lock=some'], /^pgwarden: --lock: "some" is not valid/],
  ])('%s', async (_what, args, expected) => {
    const result = await spawnCli(args, { PGWARDEN_DATABASE_URL: 'postgres://nobody:pw@127.0.0.1:1/x' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(expected);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stderr).not.toContain('pw@');
  });
});

describe('a password in a URL that is not percent-encoded: every command refuses it, exit 2, without printing any of it', () => {
  const ENCODE = 'not a well-formed URL: percent-encode reserved characters in the user and password (/ as %2F, @ as %40';
  const commands = [
    ['config', 'check'],
    ['sessions'],
    ['roles'],
    ['locks'],
    ['plan'],
    ['run', '--once'],
    ['owned', 'nobody'],
    ['logout', 'nobody', '--yes'],
    ['passwd', 'nobody'],
    ['adduser', 'nobody'],
    ['access', 'nobody'],
    ['offboard', 'nobody', '--reassign-to', 'postgres', '--yes'],
  ];
  const bad = 'postgres://u:se/cret@127.0.0.1/db';
  const sources: [string, string[], NodeJS.ProcessEnv, string][] = [
    ['env PGWARDEN_DATABASE_URL', [], { PGWARDEN_DATABASE_URL: bad }, 'database.url (env PGWARDEN_DATABASE_URL)'],
    ['--database-url', ['--database-url', 'postgres://u:p@ss:w?cret@127.0.0.1/db'], {}, '--database-url'],
    ['database.url in the file', ['--config', file(`database:\n  url: "postgresql://u:12/cret@127.0.0.1/db"\n`)], {}, 'database.url'],
    ['targets[1].url in the file', ['--config', file(`targets:\n  - { name: a, url: "postgres://u@127.0.0.1/db" }\n  - { name: b, url: "postgres://u:se#cret@127.0.0.1/db" }\n`)], {}, 'targets[1].url'],
    ['env PGWARDEN_TARGETS', [], { PGWARDEN_TARGETS: JSON.stringify([{ name: 'a', url: bad }]) }, 'targets[0].url (env PGWARDEN_TARGETS)'],
  ];
  it.each(sources)('from %s', async (_where, globals, env, key) => {
    for (const command of commands) {
      for (const json of [[], ['--json']]) {
        const result = await cli([...globals, ...json, '--log-level', 'debug', ...command], env, { stdin: 'new-password\n' });
        const what = `${command.join(' ')} ${json.join('')}`;
        expect(result.code, what).toBe(2);
        expect(result.stderr, what).toBe(`pgwarden: ${key}: ${ENCODE}, : as %3A, ? as %3F, # as %23, % as %25, a space as %20; encodeURIComponent does it)\n`);
        expect(result.stdout, what).toBe('');
        // 'se' alone is in ordinary words ("user"): look for what only the password holds.
        expect(`${result.stdout}${result.stderr}`, what).not.toMatch(/cret|se\/|se#|p@ss|ss:w/);
      }
    }
  });

  it('the built binary, as in the report', async () => {
    const result = await spawnCli(['config', 'check'], { PGWARDEN_DATABASE_URL: 'postgres://u:se/cret@host/db' });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^pgwarden: database\.url \(env PGWARDEN_DATABASE_URL\): not a well-formed URL: percent-encode reserved characters/);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).not.toMatch(/cret|se\//);
  });
});

const fixture = useFixture('hostile');

describe('a password holding every reserved character works once percent-encoded, and is never shown', () => {
  // Reserved characters, a literal %41 (which must arrive as %41, not "A"), quotes, a space, non-ASCII.
  const password = `Kx9@:?#/%Qz7 &='"%41é[]Wv2`;
  const fragments = /Kx9|Qz7|Wv2|%2541/;

  it('sessions connects over TCP as the role; config check shows ***', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('pw'));
    await f.sql(`alter role ${quoteIdent(role)} password ${quoteLiteral(password)}`);
    const server = new URL(testDatabaseUrl());
    const host = server.hostname === 'localhost' ? '127.0.0.1' : server.hostname;
    const url = `postgresql://${encodeURIComponent(role)}:${encodeURIComponent(password)}@${host}:${server.port || 5432}/postgres?sslmode=disable`;

    // What the connection code sends is the role's password, byte for byte: its SCRAM verifier
    // (or md5 hash) matches the one the server stored for the role.
    const sent = clientConfig(url, { connectTimeoutMs: 5000, statementTimeoutMs: 5000, poolSize: 1 });
    expect(sent).toMatchObject({ host, user: role, password, database: 'postgres' });
    const { rows } = await f.sql<{ stored: string }>('select rolpassword as stored from pg_authid where rolname = $1', [role]);
    const stored = rows[0]?.stored ?? '';
    const scram = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored);
    if (scram) expect(scramVerifier(password, Number(scram[1]), Buffer.from(scram[2] ?? '', 'base64'))).toBe(stored);
    else expect(stored).toBe(`md5${createHash('md5').update(password + role).digest('hex')}`);
    const client = new pg.Client(sent);
    await client.connect();
    try {
      const who = await client.query<{ user: string; tcp: boolean }>('select current_user as user, inet_client_addr() is not null as tcp');
      expect(who.rows[0]).toEqual({ user: role, tcp: true });
    } finally {
      await client.end();
    }

    const sessions = await cli(['--database-url', url, '--json', '--log-level', 'debug', 'sessions', '--role', role]);
    expect(sessions.stderr).not.toMatch(fragments);
    expect(sessions.code).toBe(0);
    expect(JSON.parse(sessions.stdout)).toEqual([]);
    expect(sessions.stdout).not.toMatch(fragments);

    const shown = `postgresql://${encodeURIComponent(role)}:***@${host}:${server.port || 5432}/postgres?sslmode=disable`;
    for (const json of [[], ['--json']]) {
      const check = await cli([...json, 'config', 'check'], { PGWARDEN_DATABASE_URL: url });
      expect(check.code).toBe(0);
      expect(check.stdout).toContain(shown);
      expect(`${check.stdout}${check.stderr}`).not.toMatch(fragments);
    }
    const targets = await cli(['config', 'check'], { PGWARDEN_TARGETS: JSON.stringify([{ name: 'only', url }]) });
    expect(targets.code).toBe(0);
    expect(targets.stdout).toContain(shown);
    expect(`${targets.stdout}${targets.stderr}`).not.toMatch(fragments);
  });
});

describe('hostile role names are quoted in every command', () => {
  const names = [
    `semi;colon; drop role postgres; --`,
    `dollar$$quote$$`,
    `back\\slash\\'`,
    `new\nline`,
    `"quoted" 'single'`,
    `Ünïcødé ✓ 名前`,
  ];
  it.each(names)('%j', async (suffix) => {
    const f = fixture();
    const role = await f.createRole(f.name(suffix));
    const db = ['--database-url', testDatabaseUrl(), '--json', '--log-level', 'error'];
    const s = await f.openSession({ role, state: 'idle' });
    const sessions = await cli([...db, 'sessions', '--role', role]);
    expect(sessions.code).toBe(0);
    expect((JSON.parse(sessions.stdout) as { pid: number }[]).map((x) => x.pid)).toEqual([s.pid]);
    const roles = await cli([...db, 'roles']);
    expect((JSON.parse(roles.stdout) as { role: string }[]).map((r) => r.role)).toContain(role);
    const owned = await cli([...db, 'owned', role]);
    expect(owned.code).toBe(0);
    const logout = await cli([...db, 'logout', role, '--lock', '--yes']);
    expect(logout.code).toBe(0);
    expect((JSON.parse(logout.stdout) as { actions: { action: string; result: string }[] }).actions.map((a) => [a.action, a.result])).toEqual([
      ['nologin', 'done'],
      ['terminate', 'done'],
    ]);
    // Nothing else happened: postgres is still there, and the role is exactly as named.
    expect((await f.sql('select 1 from pg_roles where rolname = $1', ['postgres'])).rowCount).toBe(1);
    expect((await f.sql('select rolcanlogin from pg_roles where rolname = $1', [role])).rows[0]).toEqual({ rolcanlogin: false });
  });

  it('a 63-byte name works; a longer one, which PostgreSQL would truncate to another name, is refused with exit 2', async () => {
    const f = fixture();
    const base = f.name('');
    const longest = base + 'é'.repeat((63 - Buffer.byteLength(base)) >> 1) + 'x'.repeat((63 - Buffer.byteLength(base)) % 2);
    expect(Buffer.byteLength(longest)).toBe(63);
    await f.createRole(longest);
    const ok = await cli(['--database-url', testDatabaseUrl(), '--json', 'owned', longest]);
    expect(ok.code).toBe(0);
    const tooLong = await cli(['--database-url', testDatabaseUrl(), 'owned', `${longest}z`]);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toMatch(/is longer than 63 bytes: PostgreSQL would truncate it/);
    expect(quoteIdent(longest)).toBe(`"${longest}"`);
  });
});
