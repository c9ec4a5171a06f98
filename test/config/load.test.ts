import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { POLICY_KINDS } from '../../src/policies/registry.js';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig, redactSettings } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'pgwarden-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(doc: unknown, ext = 'yaml'): string {
  const path = join(dir, `c${n++}.${ext}`);
  writeFileSync(path, typeof doc === 'string' ? doc : ext === 'json' ? JSON.stringify(doc) : stringify(doc));
  return path;
}

function policies(...items: unknown[]): string {
  return file({ policies: items });
}

function errorOf(configFile: string | undefined, env: NodeJS.ProcessEnv = {}, overrides = {}): string {
  try {
    loadConfig({ configFile, ...overrides }, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(2);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('expected a ConfigError');
}

const idle = { name: 'idle', kind: 'idle_session', schedule: '* * * * *', maxIdle: '1h' };

describe('loadConfig', () => {
  it('has documented defaults with no file', () => {
    const config = loadConfig({}, {});
    expect(config.mode).toBe('dry-run');
    expect(config.targets).toEqual([{ name: 'default', url: '' }]);
    expect(config.settings.server.port).toBe(9816);
    expect(config.settings.safety).toEqual({ maxFraction: 0.5, minActions: 5 });
    expect(config.settings.exempt.superusers).toBe(true);
    expect(config.statementTimeoutMs).toBe(30_000);
    expect(Object.isFrozen(config.settings.exempt)).toBe(true);
  });

  it('reads YAML and JSON alike and compiles every policy kind with defaults', () => {
    const doc = {
      mode: 'enforce',
      policies: [
        { name: 'iit', kind: 'idle_in_transaction', schedule: '*/15 * * * * *', maxIdle: '5m', match: { roles: ['app_*'] } },
        idle,
        { name: 'lq', kind: 'long_query', maxDuration: '10m', action: 'cancel', escalateAfter: '1m' },
        { name: 'lt', kind: 'long_transaction', maxDuration: '1h' },
        { name: 'lb', kind: 'lock_blocker', maxBlocked: '30s', states: ['idle in transaction'] },
        { name: 'pe', kind: 'password_expiry', warnWithin: '14d', action: 'nologin', grace: '7d' },
        { name: 'dr', kind: 'disabled_role', disabledWhen: { memberOf: 'pgwarden_disabled' }, actions: ['revoke_connect', 'nologin'] },
      ],
    };
    for (const path of [file(doc), file(doc, 'json')]) {
      const config = loadConfig({ configFile: path }, {});
      expect(config.mode).toBe('enforce');
      const [iit, idleP, lq, , lb, pe, dr] = config.policies;
      expect(iit).toMatchObject({ kind: 'idle_in_transaction', maxIdleSeconds: 300, action: 'terminate', maxActionsPerRun: 50 });
      expect(iit?.match.roles).toEqual(['app_*']);
      expect(idleP).toMatchObject({ kind: 'idle_session', maxIdleSeconds: 3600 });
      expect(lq).toMatchObject({ action: 'cancel', maxDurationSeconds: 600, escalateAfterSeconds: 60 });
      expect(lb).toMatchObject({ maxBlockedSeconds: 30, action: 'terminate', states: ['idle in transaction'] });
      expect(pe).toMatchObject({ warnWithinSeconds: 14 * 86_400, action: 'nologin', graceSeconds: 7 * 86_400 });
      // the fixed order, whatever the list says
      expect(dr).toMatchObject({ actions: ['nologin', 'revoke_connect'], disabledWhen: { memberOf: 'pgwarden_disabled', nologin: false } });
    }
  });

  it('takes the file, then the environment, then flags', () => {
    const path = file({ mode: 'enforce', database: { url: 'postgres://file@h/db' }, log: { level: 'warn' } });
    expect(loadConfig({ configFile: path }, {}).settings.database.url).toBe('postgres://file@h/db');
    const env = { PGWARDEN_DATABASE_URL: 'postgres://env@h/db', PGWARDEN_MODE: 'dry-run', PGWARDEN_LOG_LEVEL: 'debug' };
    const fromEnv = loadConfig({ configFile: path }, env);
    expect(fromEnv.settings.database.url).toBe('postgres://env@h/db');
    expect(fromEnv.mode).toBe('dry-run');
    expect(fromEnv.settings.log.level).toBe('debug');
    const fromFlags = loadConfig({ configFile: path, databaseUrl: 'postgres://flag@h/db', mode: 'enforce', logLevel: 'error' }, env);
    expect(fromFlags.settings.database.url).toBe('postgres://flag@h/db');
    expect(fromFlags.mode).toBe('enforce');
    expect(fromFlags.settings.log.level).toBe('error');
  });

  it('reads the file named by PGWARDEN_CONFIG, and policies from PGWARDEN_POLICIES as JSON', () => {
    expect(loadConfig({}, { PGWARDEN_CONFIG: file({ mode: 'enforce' }) }).mode).toBe('enforce');
    expect(loadConfig({}, { PGWARDEN_POLICIES: JSON.stringify([idle]) }).policies[0]?.name).toBe('idle');
    expect(loadConfig({}, { PGWARDEN_EXEMPT_ROLES: 'postgres, admin' }).settings.exempt.roles).toEqual(['postgres', 'admin']);
  });

  describe('errors name the offending key', () => {
    it.each<[string, () => string, RegExp]>([
      ['a duration', () => policies({ ...idle, maxIdle: '5 minutes' }), /^policies\[0\]\.maxIdle: "5 minutes" is not a duration/],
      ['a number as a duration', () => policies(idle, { ...idle, name: 'b', maxIdle: 300 }), /^policies\[1\]\.maxIdle: 300 is not a duration/],
      ['a missing duration', () => policies({ name: 'x', kind: 'long_query' }), /^policies\[0\]\.maxDuration: is required/],
      ['a cron expression', () => policies(idle, { ...idle, name: 'b' }, { ...idle, name: 'c', schedule: '61 * * * *' }), /^policies\[2\]\.schedule: "61 \* \* \* \*" is not a cron expression/],
      ['a cron with too few fields', () => policies({ ...idle, schedule: '* * *' }), /^policies\[0\]\.schedule: /],
      ['an unknown kind', () => policies({ ...idle, kind: 'idle' }), /^policies\[0\]\.kind: "idle" is not one of idle_session, /],
      ['an unknown policy key', () => policies({ ...idle, maxIdel: '5m' }), /^policies\[0\]\.maxIdel: unknown key/],
      ['a glob that is not a string', () => policies({ ...idle, match: { roles: ['ok', 5] } }), /^policies\[0\]\.match\.roles\[1\]: 5 is not a string/],
      ['an empty glob', () => policies({ ...idle, match: { exclude: { applications: [''] } } }), /^policies\[0\]\.match\.exclude\.applications\[0\]: an empty pattern/],
      ['an unknown match key', () => policies({ ...idle, match: { users: ['x'] } }), /^policies\[0\]\.match\.users: unknown key/],
      ['a bad action', () => policies({ ...idle, action: 'cancel' }), /^policies\[0\]\.action: "cancel" is not one of terminate/],
      ['a bad per-policy mode', () => policies({ ...idle, mode: 'on' }), /^policies\[0\]\.mode: "on" is not one of dry-run, enforce/],
      ['a bad cap', () => policies({ ...idle, maxActionsPerRun: 0 }), /^policies\[0\]\.maxActionsPerRun: 0 is not a whole number/],
      ['a duplicate name', () => policies(idle, idle), /^policies\[1\]\.name: "idle" is already the name of policies\[0\]/],
      ['a missing name', () => policies({ kind: 'idle_session', maxIdle: '1h' }), /^policies\[0\]\.name: is required/],
      ['a bad state', () => policies({ name: 'lb', kind: 'lock_blocker', maxBlocked: '1m', states: ['idle in xact'] }), /^policies\[0\]\.states\[0\]: "idle in xact" is not a session state/],
      ['no disabled condition', () => policies({ name: 'd', kind: 'disabled_role', disabledWhen: {} }), /^policies\[0\]\.disabledWhen: sets no condition/],
      ['a bad disabled action', () => policies({ name: 'd', kind: 'disabled_role', disabledWhen: { nologin: true }, actions: ['drop'] }), /^policies\[0\]\.actions\[0\]: "drop" is not one of/],
      ['a policy that is not a mapping', () => policies('idle'), /^policies\[0\]: must be a mapping/],
      ['an unknown target', () => policies({ ...idle, targets: ['eu'] }), /^policies\[0\]\.targets\[0\]: "eu" is not a configured target/],
      ['escalateAfter without cancel', () => policies({ name: 'q', kind: 'long_query', maxDuration: '1m', action: 'terminate', escalateAfter: '1m' }), /^policies\[0\]\.escalateAfter: only makes sense/],
      ['an unknown top-level key', () => file({ polices: [] }), /^polices: unknown key/],
      ['an unknown nested key', () => file({ safety: { maxFraction: 0.5, minAction: 3 } }), /^safety\.minAction: unknown key/],
      ['a bad mode', () => file({ mode: 'enforcing' }), /^mode: must be one of the possible values/],
      ['a bad fraction', () => file({ safety: { maxFraction: 2 } }), /^safety\.maxFraction: must be a number in \(0, 1\]/],
      ['a bad top-level duration', () => file({ database: { statementTimeout: 'soon' } }), /^database\.statementTimeout: "soon" is not a duration/],
      ['a bad port', () => file({ server: { port: 70000 } }), /^server\.port: /],
      ['policies that are not a list', () => file({ policies: { a: 1 } }), /^policies: must be a list/],
      ['both database.url and targets', () => file({ database: { url: 'postgres://a@h/d' }, targets: [{ name: 'x', url: 'postgres://b@h/d' }] }), /^targets: set either database\.url .* not both/],
      ['a target without url', () => file({ targets: [{ name: 'x' }] }), /^targets\[0\]\.url: is required/],
      ['YAML syntax', () => file('mode: [enforce\n'), /not valid YAML or JSON/],
      ['a top level that is a list', () => file('- a\n- b\n'), /must be a mapping of keys at the top level/],
    ])('%s', (_what, make, expected) => {
      expect(errorOf(make())).toMatch(expected);
    });

    it('a missing file', () => {
      expect(errorOf('/nonexistent/pgwarden.yaml')).toBe('--config /nonexistent/pgwarden.yaml: no such file');
    });

    it('a bad value from the environment', () => {
      expect(errorOf(undefined, { PGWARDEN_MODE: 'on' })).toMatch(/^mode: must be one of/);
      expect(errorOf(undefined, { PGWARDEN_POLICIES: '[{"name":"x","kind":"idle_session","maxIdle":"5 minutes"}]' })).toMatch(
        /^policies\[0\]\.maxIdle: "5 minutes" is not a duration/,
      );
    });

    it('a bad value from a flag', () => {
      expect(errorOf(undefined, {}, { mode: 'yes' })).toMatch(/^mode: must be one of/);
    });

    it('never prints a password from a bad URL', () => {
      const message = errorOf(file({ targets: [{ name: 'a', url: 'mysql://u:hunter2@h/d' }] }));
      expect(message).not.toContain('hunter2');
    });

    it('never echoes a value it could not read: a broken PGWARDEN_TARGETS with a password in it', () => {
      let message = '';
      try {
        loadConfig({}, { PGWARDEN_TARGETS: '[{"name":"a","url":"postgres://u:S3c r3tPW@h/db"' });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toBe('targets (env PGWARDEN_TARGETS): not valid JSON (a list of mappings, e.g. [{"name": "x", ...}])');
      expect(message).not.toContain('S3c');
    });

    describe('a password with unencoded reserved characters is refused, naming where the URL came from', () => {
      const bad = 'postgres://u:se/cret@host/db';
      const encode = /: not a well-formed URL: percent-encode reserved characters in the user and password \(\/ as %2F, @ as %40/;
      it.each<[string, () => string, RegExp]>([
        ['in the file', () => errorOf(file({ database: { url: bad } })), /^database\.url: not a well-formed/],
        ['in the environment', () => errorOf(undefined, { PGWARDEN_DATABASE_URL: bad }), /^database\.url \(env PGWARDEN_DATABASE_URL\): not a well-formed/],
        ['in the environment, over a good file', () => errorOf(file({ database: { url: 'postgres://u@h/db' } }), { PGWARDEN_DATABASE_URL: 'postgres://u:p@ss@h/db' }), /^database\.url \(env PGWARDEN_DATABASE_URL\): /],
        ['in a flag', () => errorOf(undefined, { PGWARDEN_DATABASE_URL: 'postgres://u@h/db' }, { databaseUrl: bad }), /^--database-url: not a well-formed/],
        ['in a target', () => errorOf(file({ targets: [{ name: 'a', url: 'postgres://u:pw@h/db' }, { name: 'b', url: 'postgresql://u:12?cret@host/db' }] })), /^targets\[1\]\.url: not a well-formed/],
        ['in a target from the environment', () => errorOf(undefined, { PGWARDEN_TARGETS: JSON.stringify([{ name: 'a', url: 'postgres://u:p#cret@h/db' }]) }), /^targets\[0\]\.url \(env PGWARDEN_TARGETS\): not a well-formed/],
      ])('%s', (_what, message, where) => {
        const text = message();
        expect(text).toMatch(where);
        expect(text).toMatch(encode);
        expect(text).not.toMatch(/cret|p@ss|se\//);
      });

      it('several host:port pairs, which pg-connection-string cannot parse, are refused up front', () => {
        expect(errorOf(undefined, {}, { databaseUrl: 'postgres://h1:5432,h2:5433/db' })).toMatch(/^--database-url: not a well-formed URL: several hosts/);
      });

      it('unix-socket forms keep working', () => {
        for (const url of ['postgres://u@%2Fvar%2Frun%2Fpostgresql/db', 'postgres:///db?host=/tmp', 'postgresql://u:pw@/db?host=/tmp']) {
          expect(loadConfig({ databaseUrl: url }, {}).targets[0]?.url).toBe(url);
        }
      });
    });
  });

  it('redacts passwords in the effective configuration', () => {
    const config = loadConfig({ databaseUrl: 'postgres://app:s3cr%40t@db:5432/postgres?sslmode=require&password=other' }, {});
    const shown = JSON.stringify(redactSettings(config.settings));
    expect(shown).not.toContain('s3cr');
    expect(shown).not.toContain('other');
    expect(shown).toContain('postgres://app:***@db:5432/postgres');
    const several = loadConfig({ configFile: file({ targets: [{ name: 'eu', url: 'postgres://u:pw1@eu/db' }, { name: 'us', url: 'postgres://u:pw2@us/db' }] }) }, {});
    expect(several.targets.map((t) => t.name)).toEqual(['eu', 'us']);
    const text = JSON.stringify(redactSettings(several.settings));
    expect(text).not.toMatch(/pw[12]/);
    // the loaded configuration itself still has the secret: only the printed copy is redacted
    expect(several.targets[0]?.url).toBe('postgres://u:pw1@eu/db');
  });

  it('redacts a percent-encoded password holding reserved characters, and leaves the rest as written', () => {
    const password = encodeURIComponent('Kx9@:?#/%Qz7');
    const config = loadConfig({ configFile: file({ targets: [{ name: 'eu', url: `postgresql://app:${password}@eu:5432/db?sslmode=disable` }] }) }, {});
    const shown = JSON.stringify(redactSettings(config.settings));
    expect(shown).toContain('postgresql://app:***@eu:5432/db?sslmode=disable');
    expect(shown).not.toMatch(/Kx9|Qz7|%40|%3A|%3F|%23|%2F|%25/);
  });

  it('accepts the shipped example configuration', () => {
    const example = fileURLToPath(new URL('../../config/pgwarden.example.yaml', import.meta.url));
    const config = loadConfig({ configFile: example }, {});
    const kinds = new Set(config.policies.map((p) => p.kind));
    // Every kind there is, each in the example.
    expect([...kinds].sort()).toEqual([...POLICY_KINDS].sort());
    // The connection-limit policies ship in dry-run, whatever the global mode.
    expect(config.policies.filter((p) => p.kind.startsWith('connection_')).map((p) => p.mode)).toEqual(['dry-run', 'dry-run']);
  });
});
