/**
 * Database URLs with hostile passwords: what is refused, what keeps working, and that the
 * connection code (clientConfig, i.e. pg-connection-string) reads every accepted URL as written.
 * Redaction never lets a fragment of a password through, well-formed URL or not.
 */
import { describe, expect, it } from 'vitest';
import { databaseUrlProblem, redactText, redactUrl } from '../../src/config/redact.js';
import { clientConfig } from '../../src/db/pool.js';

const OPTIONS = { connectTimeoutMs: 1000, statementTimeoutMs: 1000, poolSize: 1 };

/** host, port, user, password, database as the connection code would use them. */
function parsed(url: string): Record<string, unknown> {
  const c = clientConfig(url, OPTIONS);
  return { host: c.host, port: c.port, user: c.user, password: c.password, database: c.database };
}

const ENCODE = /^not a well-formed URL: percent-encode reserved characters in the user and password \(\/ as %2F, @ as %40, : as %3A, \? as %3F, # as %23, % as %25/;

describe('databaseUrlProblem', () => {
  it.each([
    ['a plain URL', 'postgres://pgwarden@db:5432/postgres', { host: 'db', port: 5432, user: 'pgwarden', database: 'postgres' }],
    ['postgresql://', 'postgresql://u:pw@db/app', { host: 'db', user: 'u', password: 'pw', database: 'app' }],
    ['an encoded hostile password', 'postgres://u:p%40%3A%3F%23%2F%25@127.0.0.1:5432/postgres', { host: '127.0.0.1', port: 5432, password: 'p@:?#/%' }],
    ['an encoded user', 'postgres://me%40corp:pw@db/app', { user: 'me@corp', password: 'pw', host: 'db' }],
    ['sub-delimiters in the password', "postgres://u:!$&'()*+,;=@db/app", { password: "!$&'()*+,;=", host: 'db' }],
    ['brackets and non-ASCII in the password', 'postgres://u:p[x]ä@db/app', { password: 'p[x]ä', host: 'db' }],
    ['an empty password', 'postgres://u:@db/app', { user: 'u', host: 'db' }],
    ['a password without user', 'postgres://:pw@db/app', { password: 'pw', host: 'db' }],
    ['a socket directory as host', 'postgres://u@%2Fvar%2Frun%2Fpostgresql/db', { host: '/var/run/postgresql', user: 'u', database: 'db' }],
    ['a socket directory as ?host=', 'postgres:///db?host=/tmp', { host: '/tmp', database: 'db' }],
    ['user and password with ?host= and no host', 'postgres://u:pw@/db?host=/tmp', { host: '/tmp', user: 'u', password: 'pw', database: 'db' }],
    ['an IPv6 address', 'postgres://u@[::1]:5433/db', { host: '::1', port: 5433 }],
    ['a password as a query parameter', 'postgres://u@db/app?password=s%40cret&sslmode=disable', { password: 's@cret', host: 'db' }],
    ['hosts separated by a comma without ports (parsed today as one name)', 'postgres://h1,h2/db', { host: 'h1,h2', database: 'db' }],
    ['no host at all', 'postgres://', {}],
  ])('accepts %s', (_what, url, expected) => {
    expect(databaseUrlProblem(url)).toBeUndefined();
    expect(parsed(url)).toMatchObject(expected);
  });

  it.each([
    ['a / in the password', 'postgres://u:se/cret@host/db'],
    ['a / in a numeric password (would connect to host "u")', 'postgres://u:12/34@host/db'],
    ['a password starting with /', 'postgres://u:/cret@host/db'],
    ['a ? in the password', 'postgres://u:12?x@host/db'],
    ['a # in the password', 'postgres://u:#x@host/db'],
    ['an @ in the password', 'postgres://u:p@ss@host/db'],
    ['an @ in the user', 'postgres://me@corp:pw@host/db'],
    ['an @ and a / in the password (would connect to host "x")', 'postgres://u:p@x/y@host/db'],
    ['a second : in the user and password', 'postgres://u:pa:ss@host/db'],
    ['a lone %', 'postgres://u:50%off@host/db'],
    ['a % at the end of the password', 'postgres://u:pw%@host/db'],
    ['a bad % elsewhere (pg-connection-string would re-encode the encoded password)', 'postgres://u:a%2Fb@host/db?application_name=50%'],
    ['an escape that is not UTF-8', 'postgres://u:%FF@host/db'],
    ['a space', 'postgres://u:a b@host/db'],
    ['a newline', 'postgres://u:a\nb@host/db'],
    ['an @ in a query value', 'postgres://u:pw@host/db?sslcert=/home/me@corp/c.pem'],
  ])('refuses %s, asking to percent-encode', (_what, url) => {
    expect(databaseUrlProblem(url)).toMatch(ENCODE);
  });

  it.each([
    ['several host:port pairs', 'postgres://h1:5432,h2:5433/db', /several hosts .* are not supported/],
    ['a port out of range', 'postgres://u:pw@host:99999/db', /the host or port is not valid/],
    ['a port that is not a number', 'postgres://host:54x2/db', /the host or port is not valid/],
    ['an empty host before ?', 'postgres://u:pw@?host=/tmp', /the host or port is not valid/],
    ['another scheme', 'mysql://u:pw@host/db', /^must be a postgres:\/\/ or postgresql:\/\/ URL$/],
  ])('refuses %s', (_what, url, expected) => {
    expect(databaseUrlProblem(url)).toMatch(expected);
  });

  it('never quotes the URL', () => {
    for (const url of ['postgres://u:se/cret@host/db', 'postgres://u:Kx9@h:99999/db', 'postgres://u:Kx9@h1:1,h2:2/db']) {
      const problem = databaseUrlProblem(url) ?? '';
      expect(problem).not.toMatch(/cret|Kx9|host\/db/);
    }
  });

  /** A deterministic PRNG (mulberry32): the same passwords on every run. */
  function random(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const ALPHABET = ['a', 'Z', '7', '/', '@', ':', '?', '#', '%', '%4', '%41', '%2F', '&', '=', '+', "'", '[', ']', '\\', ',', ';', '!', 'é', ' ', '.', '-', '~'];

  it('accepts a raw password only when the connection code reads it as written (2000 random passwords)', () => {
    const next = random(14);
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const length = 1 + Math.floor(next() * 8);
      let password = '';
      for (let j = 0; j < length; j++) password += ALPHABET[Math.floor(next() * ALPHABET.length)];
      for (const scheme of ['postgres', 'postgresql']) {
        const raw = `${scheme}://u:${password}@db.example:6543/app`;
        if (databaseUrlProblem(raw) === undefined) {
          accepted += 1;
          // A literal %XX cannot be told from an escape: it is read decoded, as by every URL parser.
          expect(parsed(raw), raw).toEqual({ host: 'db.example', port: 6543, user: 'u', password: decodeURIComponent(password), database: 'app' });
        }
        // The same password percent-encoded is always accepted and read back exactly.
        const encoded = `${scheme}://u:${encodeURIComponent(password)}@db.example:6543/app`;
        expect(databaseUrlProblem(encoded), encoded).toBeUndefined();
        expect(parsed(encoded), encoded).toEqual({ host: 'db.example', port: 6543, user: 'u', password, database: 'app' });
        const socket = `${scheme}://u:${encodeURIComponent(password)}@%2Ftmp%2Fpg/app`;
        expect(databaseUrlProblem(socket), socket).toBeUndefined();
        expect(parsed(socket), socket).toMatchObject({ host: '/tmp/pg', password, database: 'app' });
      }
    }
    // Some raw passwords are fine as they are (letters, sub-delimiters): not everything is refused.
    expect(accepted).toBeGreaterThan(50);
  });
});

describe('redaction of hostile passwords', () => {
  const passwords = ['se/cret', 'Kx9@Qz7', 'Kx9:Qz7', 'Kx9?Qz7', 'Kx9#Qz7', 'Kx9%Qz7', 'Kx9/@:?#%Qz7', "Kx9'Qz7", 'Kx9&Qz7'];
  const fragments = /se\/|cret|Kx9|Qz7/;

  it.each(passwords)('redactUrl hides %j, raw or encoded, in the authority or as ?password=', (password) => {
    for (const url of [
      `postgres://u:${password}@host:5432/db?sslmode=disable`,
      `postgresql://u:${encodeURIComponent(password)}@host:5432/db`,
      `postgres://u@host/db?password=${password}`,
      `postgres://u@host/db?password=${encodeURIComponent(password)}&sslmode=disable`,
    ]) {
      const shown = redactUrl(url);
      expect(shown, url).not.toMatch(fragments);
      expect(shown, url).toContain('***');
      expect(shown, url).toMatch(/^postgres(ql)?:\/\/u/);
    }
  });

  it('keeps the rest of a well-formed URL', () => {
    expect(redactUrl('postgres://u:p%40%3A%3F%23%2F%25@127.0.0.1:5432/postgres?sslmode=require')).toBe('postgres://u:***@127.0.0.1:5432/postgres?sslmode=require');
    expect(redactUrl('postgres://u:se/cret@host/db')).toBe('postgres://u:***@host/db');
    expect(redactUrl('postgres://u@host/db?password=a%26b&sslmode=disable')).toBe('postgres://u@host/db?password=***&sslmode=disable');
    expect(redactUrl('postgres://u@%2Fvar%2Frun%2Fpostgresql/db')).toBe('postgres://u@%2Fvar%2Frun%2Fpostgresql/db');
    expect(redactUrl('postgres://db:5432/postgres')).toBe('postgres://db:5432/postgres');
    expect(redactUrl('not a url')).toBe('not a url');
  });

  it.each(passwords)('redactText hides %j in free text', (password) => {
    for (const url of [`postgres://u:${password}@host/db`, `postgresql://u:${encodeURIComponent(password)}@host/db`]) {
      for (const text of [`could not connect to ${url} (refused)`, `url "${url}" is bad`, `x=${url}\n    at connect (pool.js:1:1)`]) {
        const shown = redactText(text);
        expect(shown, text).not.toMatch(fragments);
        expect(shown, text).toContain('***');
        expect(shown.split(url)).toHaveLength(1);
      }
    }
    expect(redactText(`host=db password=${password} user=u`)).not.toMatch(fragments);
  });

  it('keeps the text around a URL', () => {
    expect(redactText('connect to postgres://u:se/cret@host/db failed: timeout')).toBe('connect to postgres://u:***@host/db failed: timeout');
  });
});
