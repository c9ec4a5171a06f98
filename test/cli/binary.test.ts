/** The built binary, as users and scripts run it: exit codes, one-line errors, no secrets. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { spawnCli } from '../support/cli.js';
import { useConfigFiles } from '../support/config-file.js';
import { startEmbeddedServer, type EmbeddedServer } from '../support/embedded.js';
import { testDatabaseUrl } from '../support/fixture.js';

const configFile = useConfigFiles('bin', 'yaml');

// Nothing listens on port 1: if a command got as far as connecting, it would exit 1, not 2.
const UNREACHABLE = 'postgres://someone:hunter2@127.0.0.1:1/postgres';

function oneLine(stderr: string): string {
  expect(stderr.endsWith('\n')).toBe(true);
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  return stderr.trimEnd();
}

describe('configuration errors exit 2 with the key named, before connecting', () => {
  it.each([
    [{ policies: [{ name: 'a', kind: 'idle_session', maxIdle: '5 minutes' }] }, 'policies[0].maxIdle: "5 minutes" is not a duration'],
    [{ policies: [{ name: 'a', kind: 'idle_session', maxIdle: '5m', schedule: '* * *' }] }, 'policies[0].schedule:'],
    [{ policies: [{ name: 'a', kind: 'no_such_kind' }] }, 'policies[0].kind: "no_such_kind" is not one of'],
    [{ policies: [{ name: 'a', kind: 'idle_session', maxIdle: '5m', match: { roles: [''] } }] }, 'policies[0].match.roles[0]:'],
    [{ mode: 'enforcing' }, 'mode: must be one of the possible values'],
    [{ unknownKey: 1 }, 'unknownKey: unknown key'],
  ])('%j', async (doc, expected) => {
    const result = await spawnCli(['--config', configFile(doc), '--database-url', UNREACHABLE, 'sessions']);
    expect(result.code).toBe(2);
    expect(oneLine(result.stderr)).toContain(expected);
    expect(result.stderr).toMatch(/^pgwarden: /);
    expect(result.stdout).toBe('');
  });

  it('bad flags exit 2 too', async () => {
    expect((await spawnCli(['--mode', 'on', 'sessions'])).code).toBe(2);
    expect((await spawnCli(['sessions', '--no-such-flag'])).code).toBe(2);
    expect((await spawnCli(['no-such-command'])).code).toBe(2);
    expect((await spawnCli(['owned'])).code).toBe(2); // missing ROLE
  });

  it('--help and --version exit 0', async () => {
    const help = await spawnCli(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['sessions', 'roles', 'owned', 'config']) expect(help.stdout).toContain(command);
    expect((await spawnCli(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('config check', () => {
  it('prints the effective configuration with secrets redacted, as YAML or JSON', async () => {
    const file = configFile({ mode: 'enforce', policies: [{ name: 'idle', kind: 'idle_session', maxIdle: '1h' }] });
    const env = { PGWARDEN_DATABASE_URL: 'postgres://app:Very%20Secret@db.example:5432/postgres', PGWARDEN_LEADER_LOCK_KEY: 'fixed' };
    const yaml = await spawnCli(['--config', file, 'config', 'check'], env);
    expect(yaml.code).toBe(0);
    expect(yaml.stdout).not.toContain('Secret');
    const doc = parse(yaml.stdout) as { mode: string; database: { url: string }; policies: unknown[] };
    expect(doc.mode).toBe('enforce');
    expect(doc.database.url).toBe('postgres://app:***@db.example:5432/postgres');
    expect(doc.policies).toHaveLength(1);
    const json = await spawnCli(['--config', file, '--json', 'config', 'check'], env);
    expect(JSON.parse(json.stdout)).toEqual(doc);
  });
});

describe('an unreachable server', () => {
  it('is one line naming host, port and user, never the password; exit 1', async () => {
    const result = await spawnCli(['--database-url', UNREACHABLE, 'sessions']);
    expect(result.code).toBe(1);
    const line = oneLine(result.stderr);
    expect(line).toContain('127.0.0.1:1');
    expect(line).toContain('"someone"');
    expect(line).toContain('ECONNREFUSED');
    expect(line).not.toContain('hunter2');
  });

  it('is reported the same way from PGWARDEN_DATABASE_URL', async () => {
    const result = await spawnCli(['roles'], { PGWARDEN_DATABASE_URL: UNREACHABLE });
    expect(result.code).toBe(1);
    expect(oneLine(result.stderr)).not.toContain('hunter2');
  });
});

describe('against a server that asks for a password (scram-sha-256)', () => {
  let server: EmbeddedServer;
  beforeAll(async () => {
    server = await startEmbeddedServer({ package: 'pg17', authMethod: 'scram-sha-256', password: 'right-password' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a wrong password is one line with the server reason and no password; exit 1', async () => {
    const url = server.url.replace('right-password', 'wrong-password');
    const result = await spawnCli(['--database-url', url, 'sessions']);
    expect(result.code).toBe(1);
    const line = oneLine(result.stderr);
    expect(line).toContain(`127.0.0.1:${server.port}`);
    expect(line).toContain('"postgres"');
    expect(line).toContain('password authentication failed');
    expect(line).not.toContain('wrong-password');
  });

  it('the right password works (and the JSON is an array)', async () => {
    const result = await spawnCli(['--database-url', server.url, '--json', 'sessions']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(Array.isArray(JSON.parse(result.stdout))).toBe(true);
  });
});

describe('the default connection', () => {
  it('uses PGWARDEN_DATABASE_URL when no flag is given', async () => {
    const result = await spawnCli(['--json', 'sessions'], { PGWARDEN_DATABASE_URL: testDatabaseUrl() });
    expect(result.code).toBe(0);
    expect(Array.isArray(JSON.parse(result.stdout))).toBe(true);
  });
});
