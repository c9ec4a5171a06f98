/**
 * Bad input, table-driven: a clear one-line error and exit 2, never a stack trace; hostile role
 * names are quoted correctly in every command, never injected.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { quoteIdent } from '../src/db/quote.js';
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
    ['an invalid URL', ['--database-url', 'mysql://root:pw@db/x', 'sessions'], /^pgwarden: database\.url: must be a postgres:\/\/ or postgresql:\/\/ URL/],
    ['a URL with a space', ['--database-url', 'postgres://a b@db/x', 'sessions'], /^pgwarden: database\.url: /],
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

const fixture = useFixture('hostile');

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
