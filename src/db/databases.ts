/**
 * Visiting every database of a server, one lazily opened connection at a time, each closed as
 * soon as its work is done: a connection left open to a template makes every CREATE DATABASE
 * on the server fail, so templates and databases that refuse connections are never entered.
 */
import type pg from 'pg';
import { errorCode, errorReason, SQLSTATE } from './pg-errors.js';
import type { Queryable, TargetDb } from './pool.js';

/** A database the visit could not enter, and why (no CONNECT right, refused, dropped meanwhile). */
export interface SkippedDatabase {
  readonly database: string;
  readonly reason: string;
}

export interface VisitResult<T> {
  readonly results: { readonly database: string; readonly value: T }[];
  readonly skipped: SkippedDatabase[];
}

const LIST_DATABASES = `
  select datname as name, has_database_privilege(datname, 'CONNECT') as can_connect
  from pg_database
  where datallowconn and not datistemplate
  order by datname`;

/** The databases a visit would enter, and whether the current user may connect to each. */
export async function listConnectableDatabases(db: TargetDb): Promise<{ name: string; canConnect: boolean }[]> {
  const { rows } = await db.query<{ name: string; can_connect: boolean }>(LIST_DATABASES);
  return rows.map((r) => ({ name: r.name, canConnect: r.can_connect }));
}

/**
 * Whether `database` still exists after `err` in it. DROP DATABASE … WITH (FORCE) first ends the
 * sessions in it (57P01) and only then removes it: after such an error, look again for a moment.
 */
export async function stillExists(db: TargetDb, database: string, err: unknown): Promise<boolean> {
  const terminated = errorCode(err) === SQLSTATE.adminShutdown || /Connection terminated/i.test(errorReason(err));
  for (let attempt = 0; ; attempt++) {
    const { rowCount } = await db.query('select 1 from pg_database where datname = $1', [database]);
    if (!rowCount) return false;
    if (!terminated || attempt >= 10) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Runs `fn` in each connectable database in name order. A database that cannot be entered is
 * reported in `skipped`, never silently left out; an error from `fn` itself propagates.
 */
export async function forEachDatabase<T>(
  db: TargetDb,
  fn: (client: pg.Client, database: string) => Promise<T>,
  only?: (database: string) => boolean,
): Promise<VisitResult<T>> {
  const results: { database: string; value: T }[] = [];
  const skipped: SkippedDatabase[] = [];
  for (const { name, canConnect } of await listConnectableDatabases(db)) {
    if (only && !only(name)) continue;
    if (!canConnect) {
      skipped.push({ database: name, reason: 'no CONNECT privilege' });
      continue;
    }
    let client: pg.Client;
    try {
      client = await db.connectTo(name);
    } catch (err) {
      if (errorCode(err) !== SQLSTATE.invalidCatalogName) skipped.push({ database: name, reason: errorReason(err) });
      continue;
    }
    try {
      results.push({ database: name, value: await fn(client, name) });
    } catch (err) {
      // A database dropped while we were in it has nothing left to report; anything else is an error.
      if (await stillExists(db, name, err)) throw err;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return { results, skipped };
}

/**
 * Runs `fn` in each of `databases` (named ones, not every one), at most `concurrency` at a time,
 * each connection closed as soon as its work is done. Results come in the order given. A database
 * that cannot be entered is reported in `skipped` with the reason; one dropped meanwhile holds
 * nothing any more and is left out; an error from `fn` itself propagates.
 */
export async function visitDatabases<T>(
  db: TargetDb,
  databases: readonly string[],
  fn: (client: pg.Client, database: string) => Promise<T>,
  concurrency = 4,
): Promise<VisitResult<T>> {
  const outcomes: ({ value: T } | { skipped: string } | null)[] = databases.map(() => null);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < databases.length; i = next++) {
      const name = databases[i] as string;
      let client: pg.Client;
      try {
        client = await db.connectTo(name);
      } catch (err) {
        if (errorCode(err) !== SQLSTATE.invalidCatalogName) outcomes[i] = { skipped: errorReason(err) };
        continue;
      }
      try {
        outcomes[i] = { value: await fn(client, name) };
      } catch (err) {
        if (await stillExists(db, name, err)) throw err;
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, databases.length)) }, worker));
  const results: { database: string; value: T }[] = [];
  const skipped: SkippedDatabase[] = [];
  outcomes.forEach((o, i) => {
    const database = databases[i] as string;
    if (o && 'value' in o) results.push({ database, value: o.value });
    else if (o) skipped.push({ database, reason: o.skipped });
  });
  return { results, skipped };
}

/** Whether a database named `database` exists (pg_database: every database, whatever pgwarden's privileges). */
export async function databaseExists(db: Queryable, database: string): Promise<boolean> {
  const { rowCount } = await db.query('select 1 from pg_database where datname = $1', [database]);
  return (rowCount ?? 0) > 0;
}
