/**
 * Facts of the server a connection talks to, read once and shared by every statement builder that
 * depends on them: the major decides which catalog columns and pg_has_role modes exist (16 made
 * INHERIT and SET options of each grant). Only what cannot change while a connection lives: the
 * connected role's attributes (superuser, CREATEROLE) can, and are read in the statement that
 * relies on them, never from here. Cached per Queryable (a pool, or one client); a pool forgets them whenever
 * it drops a connection (a restart, an upgrade in place), so they are never older than the
 * connections they came from.
 * https://www.postgresql.org/docs/current/runtime-config-preset.html (server_version_num)
 */
import type { Queryable } from './pool.js';

export interface ServerFacts {
  /** server_version_num: 150020 for 15.20, 170005 for 17.5. */
  readonly versionNum: number;
}

const known = new WeakMap<Queryable, Promise<ServerFacts>>();

async function readServerFacts(db: Queryable): Promise<ServerFacts> {
  const { rows } = await db.query<{ version_num: number }>("select current_setting('server_version_num')::int as version_num");
  return { versionNum: rows[0]?.version_num ?? 0 };
}

/** The server's facts: one statement the first time for `db`, none after. Throws what the query throws (then asks again next time). */
export function serverFacts(db: Queryable): Promise<ServerFacts> {
  let facts = known.get(db);
  if (facts === undefined) {
    facts = readServerFacts(db);
    known.set(db, facts);
    facts.catch(() => known.delete(db));
  }
  return facts;
}

/** Drops what is known of `db`'s server: the next serverFacts reads it again. */
export function forgetServerFacts(db: Queryable): void {
  known.delete(db);
}
