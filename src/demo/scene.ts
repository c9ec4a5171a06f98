/**
 * The demo's scene on its throwaway server: the roles, the `shop` database and the sessions a
 * DBA would rather not find — held open by this process with pg clients, so the demo can tell
 * what each of them went through once the daemon acts (a waiter getting its lock, a cancelled
 * query, a terminated connection).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { errorCode, errorReason } from '../db/pg-errors.js';
import { quoteIdent, quoteLiteral } from '../db/quote.js';

/** The database the scene's sessions work in. */
export const SCENE_DATABASE = 'shop';
/** The row the idle-in-transaction session holds locked and the two waiters want. */
export const LOCKED_ORDER_ID = 42;
/** The marker role whose members the demo's disabled_role policy locks out. */
export const DISABLED_MARKER = 'pgwarden_disabled';

/** The scene's login roles: one per part of the story. */
export const SCENE_ROLES = {
  web: 'app_web',
  api: 'app_api',
  analyst: 'analyst',
  expiring: 'contractor',
  expired: 'old_etl',
  disabled: 'intern',
} as const;

const DAY_MS = 86_400_000;

/** What happened to one held session, as the session itself saw it. */
export interface SessionOutcome {
  /** When it happened (ms since epoch). */
  readonly atMs: number;
  /** One sentence, e.g. "got its lock after 6.2s". */
  readonly what: string;
  /** False for a connection that was simply ended: the daemon's own line already says so. */
  readonly notable: boolean;
}

/** One session the scene holds open. */
export interface HeldSession {
  readonly role: string;
  readonly application: string;
  readonly pid: number;
  /** What the session is there for, e.g. "idle in transaction, holding order 42 locked". */
  readonly part: string;
  /** Settles once when the session's story ends (its statement finished or failed, or it was terminated). */
  readonly outcome: Promise<SessionOutcome>;
}

/** The scene once every session is in its state. */
export interface Scene {
  readonly sessions: readonly HeldSession[];
  /** The roles the daemon is expected to make NOLOGIN. */
  readonly lockouts: readonly string[];
  /** Tries to log in as the disabled role with its (right) password: resolves with the server's answer. */
  tryDisabledLogin(): Promise<string>;
  /** Closes every session still open. */
  close(): Promise<void>;
}

interface Connection {
  readonly client: pg.Client;
  readonly pid: number;
  /** Settles when the connection ends, with the reason the server gave (if any). */
  readonly ended: Promise<SessionOutcome>;
}

function urlFor(serverUrl: string, role: string, password: string): string {
  const url = new URL(serverUrl);
  url.username = role;
  url.password = password;
  url.pathname = `/${SCENE_DATABASE}`;
  return url.toString();
}

async function connect(url: string, application: string): Promise<Connection> {
  const client = new pg.Client({ connectionString: url, application_name: application });
  // A terminated idle connection surfaces as an 'error' event: without a listener it would crash the demo.
  client.on('error', () => undefined);
  const ended = new Promise<SessionOutcome>((resolve) => {
    client.once('end', () => resolve({ atMs: Date.now(), what: 'its connection ended', notable: false }));
  });
  await client.connect();
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  return { client, pid: (rows[0] as { pid: number }).pid, ended };
}

/**
 * Runs `fn` on a superuser connection of the demo (in `database`, else the server URL's), and
 * closes it. Every look the demo takes at its own server goes through here.
 */
export async function asDemoAdmin<T>(serverUrl: string, fn: (client: pg.Client) => Promise<T>, database?: string): Promise<T> {
  const url = new URL(serverUrl);
  if (database !== undefined) url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString(), application_name: 'pgwarden-demo' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** Creates the roles, the database and its table, as the superuser of `serverUrl`. */
async function createSchema(serverUrl: string, passwords: ReadonlyMap<string, string>): Promise<void> {
  await asDemoAdmin(serverUrl, async (admin) => {
    const now = Date.now();
    const validUntil: Record<string, string> = {
      [SCENE_ROLES.expiring]: new Date(now + 3 * DAY_MS).toISOString(),
      [SCENE_ROLES.expired]: new Date(now - 10 * DAY_MS).toISOString(),
    };
    // Utility statements take no bind parameters: identifiers and literals go through the quoting helpers.
    for (const role of Object.values(SCENE_ROLES)) {
      const until = validUntil[role];
      await admin.query(
        `create role ${quoteIdent(role)} login password ${quoteLiteral(passwords.get(role) as string)}${until ? ` valid until ${quoteLiteral(until)}` : ''}`,
      );
    }
    await admin.query(`create role ${quoteIdent(DISABLED_MARKER)} nologin`);
    await admin.query(`grant ${quoteIdent(DISABLED_MARKER)} to ${quoteIdent(SCENE_ROLES.disabled)}`);
    await admin.query(`create database ${quoteIdent(SCENE_DATABASE)}`);
  });
  await asDemoAdmin(
    serverUrl,
    async (shop) => {
      await shop.query(`create table orders (id int primary key, status text not null default 'new', updated_by text[] not null default '{}')`);
      await shop.query('insert into orders (id) select generate_series(1, 100)');
      await shop.query(`grant select, update on orders to ${quoteIdent(SCENE_ROLES.web)}, ${quoteIdent(SCENE_ROLES.api)}`);
    },
    SCENE_DATABASE,
  );
}

/** Polls the server until `sql` returns a row whose `ok` is true. */
async function waitFor(serverUrl: string, sql: string, values: unknown[], what: string, timeoutMs = 30_000): Promise<void> {
  await asDemoAdmin(serverUrl, async (client) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ ok: boolean }>(sql, values);
      if (rows[0]?.ok) return;
      if (Date.now() > deadline) throw new Error(`scene: ${what} did not happen within ${timeoutMs / 1000}s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
}

/**
 * Builds the scene on the server at `serverUrl` (a superuser URL) and resolves once every
 * session is in its state: idle, idle in transaction, waiting on the lock, running.
 */
export async function buildScene(serverUrl: string): Promise<Scene> {
  // One-off passwords: the roles live as long as the throwaway server.
  const passwords = new Map<string, string>(Object.values(SCENE_ROLES).map((role) => [role, randomBytes(12).toString('base64url')]));
  await createSchema(serverUrl, passwords);
  const login = (role: string, application: string) => connect(urlFor(serverUrl, role, passwords.get(role) as string), application);
  const sessions: HeldSession[] = [];
  const connections: Connection[] = [];
  const hold = (c: Connection, role: string, application: string, part: string, outcome: Promise<SessionOutcome>) => {
    connections.push(c);
    sessions.push({ role, application, pid: c.pid, part, outcome });
  };

  // An application's pool left open: idle connections nobody uses.
  for (let i = 0; i < 3; i++) {
    const c = await login(SCENE_ROLES.web, 'web');
    hold(c, SCENE_ROLES.web, 'web', 'idle', c.ended);
  }

  // A checkout that began a transaction, locked an order and went away without committing.
  const blocker = await login(SCENE_ROLES.web, 'checkout');
  await blocker.client.query('begin');
  await blocker.client.query(`update orders set status = 'paid' where id = $1`, [LOCKED_ORDER_ID]);
  hold(blocker, SCENE_ROLES.web, 'checkout', `idle in transaction, holding order ${LOCKED_ORDER_ID} locked`, blocker.ended);

  // Two API requests that need the same order: they queue behind the lock.
  for (const name of ['api-1', 'api-2']) {
    const c = await login(SCENE_ROLES.api, 'api');
    const started = Date.now();
    const outcome = c.client.query('update orders set updated_by = updated_by || $1::text where id = $2', [name, LOCKED_ORDER_ID]).then(
      async () => {
        const at = Date.now();
        // The request is done: its connection goes back, as an application's would.
        await c.client.end().catch(() => undefined);
        return { atMs: at, what: `got its lock after ${seconds(at - started)} of waiting; its UPDATE committed (${name})`, notable: true };
      },
      (err: unknown) => ({ atMs: Date.now(), what: `never got its lock: ${errorReason(err)}`, notable: true }),
    );
    hold(c, SCENE_ROLES.api, 'api', `waiting for order ${LOCKED_ORDER_ID}`, outcome);
  }

  // A report that will never finish.
  const runaway = await login(SCENE_ROLES.analyst, 'report');
  const runawayStarted = Date.now();
  const runawayOutcome = runaway.client.query('select pg_sleep(3600) /* monthly report */').then(
    () => ({ atMs: Date.now(), what: 'finished (it should not have)', notable: true }),
    async (err: unknown) => {
      const at = Date.now();
      await runaway.client.end().catch(() => undefined);
      const how = errorCode(err) === '57014' ? 'was cancelled' : errorCode(err) === '57P01' ? 'was terminated' : `failed (${errorReason(err)})`;
      return { atMs: at, what: `its query ${how} after ${seconds(at - runawayStarted)}`, notable: true };
    },
  );
  hold(runaway, SCENE_ROLES.analyst, 'report', 'running pg_sleep(3600)', runawayOutcome);

  // Someone who left, whose role was marked disabled, but whose psql is still connected.
  const disabled = await login(SCENE_ROLES.disabled, 'psql');
  hold(disabled, SCENE_ROLES.disabled, 'psql', `idle; member of ${DISABLED_MARKER}`, disabled.ended);

  await waitFor(
    serverUrl,
    `select count(*) filter (where wait_event_type = 'Lock') = 2 and count(*) filter (where state = 'active' and query like 'select pg_sleep%') = 1 as ok
       from pg_stat_activity where application_name in ('api', 'report')`,
    [],
    'the two waiters queueing on the lock and the runaway query starting',
  );

  return {
    sessions,
    lockouts: [SCENE_ROLES.expired, SCENE_ROLES.disabled],
    async tryDisabledLogin() {
      try {
        const c = await login(SCENE_ROLES.disabled, 'psql');
        await c.client.end();
        return 'logged in (not locked out)';
      } catch (err) {
        return `refused: ${errorReason(err)}`;
      }
    },
    async close() {
      await Promise.allSettled(connections.map((c) => c.client.end()));
    },
  };
}
