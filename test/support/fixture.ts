/**
 * Per-test database state: uniquely named roles and databases (roles are cluster-wide, so every
 * name carries the test's prefix), real client sessions in the states policies look for, and a
 * cleanup that removes all of it. A failed test's leftovers are kept only with
 * PGWARDEN_TEST_KEEP=1, never in CI.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, inject } from 'vitest';
import { quoteIdent, quoteLiteral } from '../../src/db/quote.js';
import type { AgeColumn } from '../../src/policies/types.js';

/** The URL of the server under test (see global-setup.ts). */
export function testDatabaseUrl(): string {
  return inject('databaseUrl');
}

/** Same server, another database. */
export function urlFor(database: string, user?: { name: string; password: string }): string {
  const url = new URL(testDatabaseUrl());
  url.pathname = `/${encodeURIComponent(database)}`;
  if (user) {
    url.username = encodeURIComponent(user.name);
    url.password = encodeURIComponent(user.password);
  }
  return url.toString();
}

export const ROLE_PASSWORD = 'fixture-pw';

/** Tries a new connection: true when it gets in, else the server's reason. */
export async function tryLogin(url: string): Promise<true | string> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export type SessionState = 'idle' | 'idle in transaction' | 'idle in transaction (aborted)' | 'active';

export interface OpenSession {
  readonly client: pg.Client;
  readonly pid: number;
  /** Settles when a running statement ends (rejects quietly when the backend is killed). */
  readonly running: Promise<unknown> | undefined;
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(check: () => Promise<T | undefined | false | null>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Something that runs a parameterized query: a pg.Client on any server, or the fixture's admin queue. */
interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** The pg_stat_activity column an age is measured from, as SQL: from this list only, never from the caller's text. */
const AGE_COLUMN_SQL: Readonly<Record<AgeColumn, string>> = {
  state_change: 'state_change',
  query_start: 'query_start',
  xact_start: 'xact_start',
  backend_start: 'backend_start',
};

/**
 * Waits until every backend in `pids` is more than `seconds` (seconds, fractions allowed) old,
 * measured from `column` of pg_stat_activity by the server's clock — as the snapshot measures a
 * session's age (src/db/snapshot.ts: one clock_timestamp() per snapshot, taken later than this
 * poll) and as a policy compares it with its limit (strictly greater: src/policies/session-rule.ts).
 * So once this returns, a policy whose limit is `seconds` sees these sessions past it, however
 * fast or slow the test machine is; no wall-clock sleep guesses how long that takes.
 */
export async function waitForSessionAge(
  client: Queryable,
  pids: readonly number[],
  seconds: number,
  column: AgeColumn = 'state_change',
  timeoutMs = seconds * 1000 + 10_000,
): Promise<void> {
  const since = AGE_COLUMN_SQL[column];
  await waitFor(
    async () => {
      const { rows } = await client.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
         where pid = any($1::int[]) and clock_timestamp() - ${since} > make_interval(secs => $2::float8)`,
        [pids, seconds],
      );
      return rows[0]?.n === pids.length;
    },
    `pids ${pids.join(', ')} to be more than ${seconds}s past ${column} by the server's clock`,
    timeoutMs,
  );
}

/**
 * Waits until every backend in `pids` has waited on a lock for more than `seconds` (seconds),
 * by the server's clock: the wait lock_blocker's maxBlocked is compared with (strictly greater) —
 * the earliest pg_locks.waitstart of the backend's ungranted locks, as src/db/locks.ts reads it.
 */
export async function waitForLockWaitAge(client: Queryable, pids: readonly number[], seconds: number, timeoutMs = seconds * 1000 + 10_000): Promise<void> {
  await waitFor(
    async () => {
      const { rows } = await client.query<{ n: number }>(
        `select count(*)::int as n
         from (select pid, min(waitstart) as waitstart from pg_locks where not granted and pid = any($1::int[]) group by pid) w
         where clock_timestamp() - w.waitstart > make_interval(secs => $2::float8)`,
        [pids, seconds],
      );
      return rows[0]?.n === pids.length;
    },
    `pids ${pids.join(', ')} to have waited on a lock more than ${seconds}s by the server's clock`,
    timeoutMs,
  );
}

export class Fixture {
  /** Prefix of every role and database name this fixture creates. */
  readonly prefix: string;
  readonly #roles: string[] = [];
  readonly #databases: string[] = [];
  readonly #clients: pg.Client[] = [];
  #admin: Promise<pg.Client> | undefined;
  /** The admin connection's last statement asked for: the next one runs after it (sql). */
  #queue: Promise<unknown> = Promise.resolve();
  /** The admin connection as waitForSessionAge and waitForLockWaitAge use it: through the queue. */
  readonly #queued: Queryable = { query: <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => this.sql<R>(text, values) };

  constructor(label: string) {
    this.prefix = `pgw_${label.replace(/[^a-z0-9]/gi, '').slice(0, 12).toLowerCase()}_${randomBytes(3).toString('hex')}`;
  }

  /** A unique name under this fixture's prefix; `suffix` may hold any characters. */
  name(suffix: string): string {
    return `${this.prefix}_${suffix}`;
  }

  /** A superuser connection to the test server's connection database. */
  admin(): Promise<pg.Client> {
    // One connection however many callers ask at once (tests open sessions in Promise.all).
    this.#admin ??= (async () => {
      const client = new pg.Client({ connectionString: testDatabaseUrl(), application_name: 'pgwarden-test-admin' });
      client.on('error', () => undefined);
      await client.connect();
      return client;
    })().catch((err: unknown) => {
      // the next caller tries again
      this.#admin = undefined;
      throw err;
    });
    return this.#admin;
  }

  /**
   * A statement on the admin connection, after every one asked for before it: a connection runs
   * one query at a time, and pg only queues a second with a deprecation warning (pg 9 refuses it).
   */
  sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    const result = this.#queue.then(async () => (await this.admin()).query<R>(text, values));
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** CREATE ROLE with LOGIN and a password (so it also works on password-auth servers), plus `options`. */
  async createRole(name: string, options = ''): Promise<string> {
    const login = /\bnologin\b/i.test(options) ? '' : 'login';
    await this.sql(`create role ${quoteIdent(name)} ${login} password ${quoteLiteral(ROLE_PASSWORD)} ${options}`);
    this.#roles.push(name);
    return name;
  }

  /** CREATE DATABASE from template0 (never holds a connection to template1). */
  async createDatabase(name: string, owner?: string): Promise<string> {
    await this.sql(`create database ${quoteIdent(name)} template template0${owner ? ` owner ${quoteIdent(owner)}` : ''}`);
    this.#databases.push(name);
    return name;
  }

  /** Connects as `role` (default: the admin user) to `database`, then puts the session in `state`. */
  async openSession(options: { role?: string; database?: string; application?: string; state: SessionState }): Promise<OpenSession> {
    const url = new URL(testDatabaseUrl());
    const client = new pg.Client({
      host: url.hostname,
      port: Number(url.port || 5432),
      user: options.role ?? decodeURIComponent(url.username),
      password: options.role ? ROLE_PASSWORD : decodeURIComponent(url.password),
      database: options.database ?? decodeURIComponent(url.pathname.slice(1) || 'postgres'),
      application_name: options.application ?? `${this.prefix}-app`,
    });
    client.on('error', () => undefined);
    await client.connect();
    this.#clients.push(client);
    const pid = (client as unknown as { processID: number }).processID;
    let running: Promise<unknown> | undefined;
    switch (options.state) {
      case 'idle':
        break;
      case 'idle in transaction':
        await client.query('begin');
        await client.query('select 1');
        break;
      case 'idle in transaction (aborted)':
        await client.query('begin');
        await client.query('select 1/0').catch(() => undefined);
        break;
      case 'active':
        running = client.query('select pg_sleep(300)').catch(() => undefined);
        break;
    }
    const state = options.state;
    await waitFor(async () => {
      const { rows } = await this.sql('select state from pg_stat_activity where pid = $1', [pid]);
      return rows[0]?.state === state;
    }, `session ${pid} to be ${state}`);
    return { client, pid, running };
  }

  /**
   * Waits until every session in `pids` is more than `seconds` (seconds) old by the server's clock,
   * measured from `column` as the policy kinds do (waitForSessionAge): in place of a sleep before
   * a policy with that limit runs.
   */
  async waitForAge(pids: readonly number[], seconds: number, column: AgeColumn = 'state_change'): Promise<void> {
    await waitForSessionAge(this.#queued, pids, seconds, column);
  }

  /** Waits until every session in `pids` has waited on a lock more than `seconds` (seconds) by the server's clock (waitForLockWaitAge). */
  async waitForLockWait(pids: readonly number[], seconds: number): Promise<void> {
    await waitForLockWaitAge(this.#queued, pids, seconds);
  }

  /** Is the backend still there? */
  async alive(pid: number): Promise<boolean> {
    const { rowCount } = await this.sql('select 1 from pg_stat_activity where pid = $1', [pid]);
    return rowCount === 1;
  }

  /** Ends every session, database and role this fixture made. */
  async cleanup(): Promise<void> {
    await this.#queue;
    const admin = await this.admin();
    await Promise.allSettled(this.#clients.map((c) => c.end()));
    if (this.#roles.length > 0) {
      await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where usename = any($1)', [this.#roles]);
    }
    for (const db of this.#databases.reverse()) {
      await admin.query(`drop database if exists ${quoteIdent(db)} with (force)`);
    }
    for (const role of this.#roles.reverse()) {
      // Objects in the connection database that the role owns or was granted go first.
      await admin.query(`drop owned by ${quoteIdent(role)} cascade`).catch(() => undefined);
      await admin.query(`drop role if exists ${quoteIdent(role)}`);
    }
    await admin.end();
    this.#admin = undefined;
  }
}

/**
 * A fresh Fixture per test, cleaned up afterwards (kept when the test failed and
 * PGWARDEN_TEST_KEEP=1 outside CI, for debugging).
 */
export function useFixture(label: string): () => Fixture {
  let current: Fixture | undefined;
  beforeEach(() => {
    current = new Fixture(label);
  });
  afterEach(async (context) => {
    const failed = context.task.result?.state === 'fail';
    const keep = failed && process.env.PGWARDEN_TEST_KEEP === '1' && !process.env.CI;
    if (current && !keep) await current.cleanup();
    current = undefined;
  });
  return () => {
    if (!current) throw new Error('useFixture: no fixture outside a test');
    return current;
  };
}
