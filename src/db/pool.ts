/**
 * Connections: one pg pool per target, and short-lived clients per database for commands that
 * must visit every database. All carry application_name=pgwarden, a connect timeout and a
 * statement timeout; the daemon knows its own backends by pid (a name is never proof).
 */
import { userInfo } from 'node:os';
import pgpass from 'pgpass';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import type { Logger } from 'pino';
import { ConnectionError, type ConnectionTarget } from '../errors.js';
import { errorCode, errorReason, isConnectionFailure } from './pg-errors.js';
import { forgetServerFacts } from './server.js';
import type { Target } from '../config/policies.js';

export const APPLICATION_NAME = 'pgwarden';

/** How much longer than statement_timeout the client waits for an answer before giving up on the server, ms. */
export const QUERY_TIMEOUT_MARGIN_MS = 5000;

/** Anything that runs a parameterised statement: a TargetDb (pool) or one pg client. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** Timeouts and size shared by every connection pgwarden opens. */
export interface ConnectionOptions {
  readonly connectTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly poolSize: number;
}

/** pg client settings for a target URL, optionally pointed at another database. */
export function clientConfig(url: string, options: ConnectionOptions, database?: string): pg.ClientConfig {
  // libpq falls back to the operating-system user when neither the URL nor PGUSER names one;
  // pg falls back to $USER, which containers and CI often leave unset.
  // Parsed here rather than passed as connectionString: pg lets a connectionString override an
  // explicit `database`, and visiting other databases needs exactly that override.
  const fromUrl = url ? parseIntoClientConfig(url) : {};
  const user = new pg.Client(fromUrl).user ? undefined : osUser();
  const config: pg.ClientConfig = {
    ...fromUrl,
    ...(user !== undefined ? { user } : {}),
    ...(database !== undefined ? { database } : {}),
  };
  return {
    ...config,
    // No password in the URL or PGPASSWORD: the password file, as libpq reads it (pg's own
    // fallback to it is deprecated and warns on every connection).
    ...(!config.password && process.env.PGPASSWORD === undefined ? { password: passwordFileLookup(config) } : {}),
    application_name: APPLICATION_NAME,
    connectionTimeoutMillis: options.connectTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    // A dead peer must not hang a leader lock or a pool forever.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
}

/**
 * A password for pg to ask for when the server wants one: the entry of PGPASSFILE (or ~/.pgpass)
 * matching the connection, or a clear error naming where it looked.
 */
function passwordFileLookup(config: pg.ClientConfig): () => Promise<string> {
  return () =>
    new Promise((resolve, reject) => {
      pgpass(describeConnection(config), (password) => {
        if (password !== undefined) resolve(password);
        else reject(new Error('the server asks for a password and none was given: not in the URL, PGPASSWORD, nor the password file (PGPASSFILE or ~/.pgpass, which must not be readable by group or others)'));
      });
    });
}

/**
 * A pooled client that closes its socket when connecting fails. pg leaves the socket open after a
 * failure in the authentication exchange (no password to send), and pg-pool drops such a client
 * without ending it: the process would wait for the server's authentication_timeout (60 s by
 * default) before it could exit, and a retrying daemon would hold one socket per attempt.
 */
class ClosingClient extends pg.Client {
  override connect(): Promise<pg.Client>;
  override connect(callback: (err: Error) => void): void;
  override connect(callback?: (err: Error) => void): Promise<pg.Client> | void {
    if (callback === undefined) {
      return super.connect().catch(async (err: unknown) => {
        await this.end().catch(() => undefined);
        throw err;
      });
    }
    super.connect((err: Error | null) => {
      if (!err) return callback(err as unknown as Error);
      this.end()
        .catch(() => undefined)
        .finally(() => callback(err));
    });
  }
}

function osUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

/** Where a config connects, as pg resolves it (URL, then PG* env, then defaults); never the password. */
export function describeConnection(config: pg.ClientConfig): ConnectionTarget {
  const probe = new pg.Client(config);
  return {
    host: probe.host || 'localhost',
    port: probe.port,
    user: probe.user ?? '',
    database: probe.database ?? probe.user ?? '',
  };
}

/** Rethrows "could not connect" as a ConnectionError naming host, port, user and the server's reason. */
export function asConnectionError(err: unknown, where: ConnectionTarget): unknown {
  if (!isConnectionFailure(err)) return err;
  return new ConnectionError(where, errorReason(err), errorCode(err));
}

/** Type parsers that leave every column as the server's text. */
const RAW_TEXT = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

function processIdOf(client: pg.ClientBase): number | undefined {
  return (client as unknown as { processID?: number }).processID;
}

/** A target's pool, with the pids of pgwarden's own backends. */
export class TargetDb {
  readonly name: string;
  readonly where: ConnectionTarget;
  /** Backends opened by this pool: policies never act on them. */
  readonly ownPids = new Set<number>();
  readonly #pool: pg.Pool;
  readonly #url: string;
  readonly #options: ConnectionOptions;
  readonly #log: Logger;
  #ended = false;
  #queries = 0;

  constructor(target: Target, options: ConnectionOptions, logger: Logger) {
    this.name = target.name;
    this.#url = target.url;
    this.#options = options;
    this.#log = logger;
    const config = clientConfig(target.url, options);
    this.where = describeConnection(config);
    this.#pool = new pg.Pool({ ...config, max: options.poolSize, idleTimeoutMillis: 30_000, Client: ClosingClient as unknown as new () => pg.ClientBase });
    // An idle client's failure (server restart, network) must not crash the process.
    this.#pool.on('error', (err) => logger.warn({ err, target: this.name }, 'idle database connection failed'));
    this.#pool.on('connect', (client) => {
      const pid = processIdOf(client);
      if (pid !== undefined) this.ownPids.add(pid);
    });
    this.#pool.on('remove', (client) => {
      const pid = processIdOf(client);
      if (pid !== undefined) this.ownPids.delete(pid);
      // What was read over a connection that is gone may be out of date (a restart, an upgrade).
      forgetServerFacts(this);
    });
  }

  /** Runs one statement on the pool; connection failures become ConnectionError. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    this.#queries += 1;
    try {
      return await this.#pool.query<R>(text, values);
    } catch (err) {
      throw asConnectionError(err, this.where);
    }
  }

  /**
   * Runs one named (prepared once per connection) statement and returns its rows as arrays of
   * the server's text, NULL as null: for the snapshot queries, which parse their own columns
   * (no Date parsing, no intermediate row objects: see README, Performance).
   */
  async queryText(statement: { readonly name: string; readonly text: string; readonly values?: readonly unknown[] }): Promise<(string | null)[][]> {
    this.#queries += 1;
    try {
      const result = await this.#pool.query<(string | null)[]>({
        name: statement.name,
        text: statement.text,
        values: statement.values ? [...statement.values] : [],
        rowMode: 'array',
        types: RAW_TEXT,
        // The server ends a statement at statement_timeout; a server that does not answer at all
        // (its host frozen, a network that drops packets without a reset) would leave a snapshot
        // waiting for TCP keepalive, minutes, with the target still shown up: the client gives up
        // a little after the server would have, and the pool discards that client. Only here, on
        // the snapshots' single statements: a block of several statements (an offboard trial, a
        // REVOKE as its grantor) may rightly take longer, and its outcome would be unknown.
        ...(this.#options.statementTimeoutMs > 0 ? { query_timeout: this.#options.statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS } : {}),
      });
      return result.rows;
    } catch (err) {
      throw asConnectionError(err, this.where);
    }
  }

  /**
   * Runs `fn` on one pooled client (for statements that must share a session). pg-pool removes its
   * idle `error` listener while a client is checked out, and pg emits 'error' when the backend is
   * terminated or the socket breaks: without a listener of ours for that time the event would end
   * the process (issue 14, case 9). The statement in flight, or the next one, fails instead; the
   * client goes back as broken, never to be reused. So does a client whose `fn` threw: its session
   * may be left in an aborted transaction or with a SET in force (pg-pool's own `query` does the same).
   */
  async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw asConnectionError(err, this.where);
    }
    let broken: unknown;
    const onError = (err: unknown): void => {
      if (broken !== undefined) return;
      broken = err;
      this.#log.warn({ err, target: this.name }, 'database connection failed while in use');
    };
    client.on('error', onError);
    let succeeded = false;
    try {
      const result = await fn(client);
      succeeded = true;
      return result;
    } catch (err) {
      // The server's reason for the statement in flight when it had one; else the connection's
      // failure, the cause of pg's "not queryable" on a statement sent after it.
      throw broken !== undefined && !(err instanceof pg.DatabaseError) ? broken : err;
    } finally {
      // Released first (pg-pool puts its idle listener back), then ours removed: never a moment
      // without one.
      client.release(!succeeded || broken !== undefined);
      client.off('error', onError);
    }
  }

  /** Opens a client to another database of the same server, with the same credentials. */
  async connectTo(database: string): Promise<pg.Client> {
    const config = clientConfig(this.#url, this.#options, database);
    const client = new pg.Client(config);
    client.on('error', () => {
      /* reported by the query that fails; without a listener an idle error would crash us */
    });
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw asConnectionError(err, { ...this.where, database });
    }
    const pid = processIdOf(client);
    if (pid !== undefined) this.ownPids.add(pid);
    const end = client.end.bind(client);
    client.end = (async () => {
      if (pid !== undefined) this.ownPids.delete(pid);
      await end();
    });
    return client;
  }

  /** Statements sent through `query` so far (the benchmark counts round trips with it). */
  get queryCount(): number {
    return this.#queries;
  }

  /**
   * Closes the pool; safe to call twice. pg waits for checked-out clients, so a statement still
   * running (say, a DDL waiting on a lock) would hold shutdown hostage: give up after `waitMs`
   * and report whether the pool really closed.
   */
  async end(waitMs = 5000): Promise<boolean> {
    if (this.#ended) return true;
    this.#ended = true;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), waitMs);
    });
    try {
      return await Promise.race([this.#pool.end().then(() => true), gaveUp]);
    } finally {
      clearTimeout(timer);
    }
  }
}
