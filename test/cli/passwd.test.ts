/**
 * `pgwarden passwd` against a server that checks passwords: a throwaway embedded PostgreSQL whose
 * pg_hba asks for scram-sha-256 (in the version matrix, the matrix server itself, which asks for
 * passwords checked against the stored verifier).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteIdent, quoteLiteral } from '../../src/db/quote.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, spawnCli } from '../support/cli.js';
import { startEmbeddedServer, type EmbeddedServer } from '../support/embedded.js';
import { testDatabaseUrl, tryLogin } from '../support/fixture.js';

let server: EmbeddedServer | undefined;
let url: string;
let admin: pg.Client;
const created: string[] = [];

beforeAll(async () => {
  if (process.env.PGWARDEN_TEST_EXPECT_MAJOR) url = testDatabaseUrl();
  else {
    server = await startEmbeddedServer({ package: 'pg17', authMethod: 'scram-sha-256', postgresFlags: ['-c', 'scram_iterations=10000'] });
    url = server.url;
  }
  admin = new pg.Client(url);
  await admin.connect();
});

afterAll(async () => {
  for (const role of created) await admin.query(`drop role if exists ${quoteIdent(role)}`);
  await admin?.end();
  await server?.stop();
});

async function createRole(name: string): Promise<string> {
  await admin.query(`create role ${quoteIdent(name)} login password ${quoteLiteral('old-password')}`);
  created.push(name);
  return name;
}

async function login(role: string, password: string): Promise<true | string> {
  const target = new URL(url);
  target.username = encodeURIComponent(role);
  target.password = encodeURIComponent(password);
  return tryLogin(target.toString());
}

const suffix = Math.random().toString(16).slice(2, 8);

describe('pgwarden passwd', () => {
  it('stores only a SCRAM verifier with the server iteration count, and the new password logs in over TCP', async () => {
    const role = await createRole(`pgw_passwd_${suffix}_Zoë "Q"`);
    const password = 'n3w pässwörd\u00AD!'; // the soft hyphen is removed by SASLprep on both sides
    const metricsDir = mkdtempSync(join(tmpdir(), 'pgwarden-passwd-'));
    const metricsFile = join(metricsDir, 'passwd.prom');
    const result = await cli(['--database-url', url, '--json', 'passwd', role, '--valid-until', '2031-05-01T12:00:00Z', '--metrics-file', metricsFile], {}, { stdin: `${password}\n` });
    expect(readFileSync(metricsFile, 'utf8')).toContain('pgwarden_actions_total{target="default",policy="passwd",action="set_password",result="done"} 1');
    rmSync(metricsDir, { recursive: true, force: true });
    expect(result.stderr).not.toContain(password);
    expect(result.stderr).not.toContain('SCRAM-SHA-256$');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ role, validUntil: '2031-05-01T12:00:00.000Z' });

    const { rows } = await admin.query<{ rolpassword: string; iterations: string | null }>(
      `select rolpassword, current_setting('scram_iterations', true) as iterations from pg_authid where rolname = $1`,
      [role],
    );
    const expectedIterations = rows[0]?.iterations ?? '4096';
    expect(rows[0]?.rolpassword).toMatch(new RegExp(`^SCRAM-SHA-256\\$${expectedIterations}:`));
    if (!process.env.PGWARDEN_TEST_EXPECT_MAJOR) expect(expectedIterations).toBe('10000');

    expect(await login(role, password)).toBe(true);
    expect(await login(role, 'n3w pässwörd!')).toBe(true); // SASLprep: same password
    expect(await login(role, 'old-password')).toMatch(/password authentication failed/);
  });

  it('refuses an empty password, a bad --valid-until and an unknown role with exit 2, changing nothing', async () => {
    const role = await createRole(`pgw_passwd_${suffix}_keep`);
    expect((await cli(['--database-url', url, 'passwd', role], {}, { stdin: '\n' })).code).toBe(2);
    const bad = await cli(['--database-url', url, 'passwd', role, '--valid-until', 'next week'], {}, { stdin: 'x\n' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--valid-until: "next week" is not a timestamp/);
    expect((await cli(['--database-url', url, 'passwd', `${role}_ghost`], {}, { stdin: 'x\n' })).code).toBe(2);
    expect(await login(role, 'old-password')).toBe(true);
  });

  it('reads the password from PGPASSFILE as libpq does, when the URL has none', async () => {
    const role = await createRole(`pgw_passwd_${suffix}_file`);
    const target = new URL(url);
    target.username = encodeURIComponent(role);
    target.password = '';
    const dir = mkdtempSync(join(tmpdir(), 'pgwarden-pgpass-'));
    try {
      const file = join(dir, 'pgpass');
      writeFileSync(file, `${target.hostname}:${target.port}:*:${role.replace(/[:\\]/g, '\\$&')}:old-password\n`, { mode: 0o600 });
      const found = await spawnCli(['--database-url', target.toString(), 'roles', '--json'], { PGPASSFILE: file });
      // Nothing but the warning any role without pg_read_all_stats gets when others are connected.
      expect(found.stderr.replace(/^pgwarden: warning: .* hidden from pgwarden's role .*\n/gm, '')).toBe('');
      expect(found.code).toBe(0);
      expect(JSON.parse(found.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ role })]));
      const none = await spawnCli(['--database-url', target.toString(), 'roles'], { PGPASSFILE: join(dir, 'missing') });
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/none was given: not in the URL, PGPASSWORD, nor the password file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on a terminal asks twice and refuses a mismatch', async () => {
    const role = await createRole(`pgw_passwd_${suffix}_tty`);
    const mismatch = await cli(['--database-url', url, 'passwd', role], {}, { answers: ['one', 'two'] });
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toMatch(/do not match/);
    const ok = await cli(['--database-url', url, 'passwd', role], {}, { answers: ['typed-twice', 'typed-twice'] });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/password of .* changed \(SCRAM-SHA-256/);
    expect(await login(role, 'typed-twice')).toBe(true);
  });
});
