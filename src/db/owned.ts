/**
 * What a role owns, everywhere: every object PostgreSQL records as owned by it in pg_shdepend,
 * whatever its kind (tables, routines, schemas, types, event triggers, publications, servers,
 * large objects, default privileges, …), named by pg_identify_object; the shared ones (databases,
 * tablespaces, subscriptions) too. Only the databases pg_shdepend names are entered, a few at a
 * time; one that holds objects of the role but cannot be entered is reported with its count.
 */
import type pg from 'pg';
import { visitDatabases } from './databases.js';
import { fetchFootprint, fetchOwnedHere, type DatabaseFootprint } from './footprint.js';
import type { TargetDb } from './pool.js';

/** One owned object (DESIGN.md `owned` shape). */
export interface OwnedObject {
  /** The database it lives in; for a database, the database itself; null for other shared objects. */
  readonly database: string | null;
  /** pg_identify_object's type: `table`, `view`, `function`, `schema`, `event trigger`, … */
  readonly type: string;
  readonly schema: string | null;
  /** pg_identify_object's name, quoted where needed; its identity where it has no name (routines: with their argument types). */
  readonly name: string;
}

/** A database holding objects of the role that could not be entered (DESIGN.md). */
export interface UnvisitedDatabase {
  readonly database: string;
  readonly type: 'unvisited';
  readonly schema: null;
  readonly name: null;
  /** Objects of the role there, as pg_shdepend counts them. */
  readonly objects: number;
  readonly reason: string;
}

export interface OwnedReport {
  readonly objects: OwnedObject[];
  /** Databases holding objects of the role that could not be entered: the list is incomplete there. */
  readonly unvisited: UnvisitedDatabase[];
  /** What pg_shdepend records of the role, per database. */
  readonly footprint: DatabaseFootprint[];
}

/** How many databases are entered at once. */
export const VISIT_CONCURRENCY = 4;

/** Why a database that holds something of the role cannot be entered, or null when it can be tried. */
export function unenterable(f: DatabaseFootprint): string | null {
  if (!f.allowConnections) return 'it does not allow connections (datallowconn is false)';
  if (!f.canConnect) return "pgwarden's role has no CONNECT privilege on it";
  return null;
}

/**
 * Runs `fn` in each database whose footprint `count`s something of the role, a few at a time;
 * the databases it holds something in but cannot enter come back as `unvisited`, with the count.
 */
export async function visitFootprint<T>(
  db: TargetDb,
  footprint: readonly DatabaseFootprint[],
  count: (f: DatabaseFootprint) => number,
  fn: (client: pg.Client, database: string) => Promise<T>,
): Promise<{ results: { database: string; value: T }[]; unvisited: UnvisitedDatabase[] }> {
  const unvisited: UnvisitedDatabase[] = [];
  const enter: string[] = [];
  const missed = (database: string, objects: number, reason: string) => unvisited.push({ database, type: 'unvisited', schema: null, name: null, objects, reason });
  for (const f of footprint) {
    if (f.database === null || count(f) === 0) continue;
    const reason = unenterable(f);
    if (reason) missed(f.database, count(f), reason);
    else enter.push(f.database);
  }
  const visit = await visitDatabases(db, enter, fn, VISIT_CONCURRENCY);
  for (const s of visit.skipped) {
    const f = footprint.find((x) => x.database === s.database);
    missed(s.database, f ? count(f) : 0, s.reason);
  }
  return { results: visit.results, unvisited };
}

/** Everything `role` owns on the server (by name); one statement on the pool, then only the databases that hold something of it. */
export async function fetchOwned(db: TargetDb, role: string): Promise<OwnedReport> {
  const footprint = await fetchFootprint(db, role);
  const shared = footprint.some((f) => f.database === null && f.owned > 0) ? await fetchOwnedHere(db, role, true) : [];
  // A database is listed as living in itself (its name unquoted); other shared objects in none.
  const objects: OwnedObject[] = shared.map((o) => ({
    database: o.type === 'database' ? o.name.replace(/^"(.*)"$/, '$1').replace(/""/g, '"') : null,
    type: o.type,
    schema: o.schema,
    name: o.name,
  }));
  const visit = await visitFootprint(db, footprint, (f) => f.owned, (client) => fetchOwnedHere(client, role, false));
  for (const { database, value } of visit.results) objects.push(...value.map((o) => ({ database, type: o.type, schema: o.schema, name: o.name })));
  const unvisited = visit.unvisited;
  return { objects, unvisited, footprint };
}
