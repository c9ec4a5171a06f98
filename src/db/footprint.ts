/**
 * Where a role has something, read from pg_shdepend: the shared catalog in which PostgreSQL
 * records, for every database, each object a role owns (deptype `o`), each ACL entry naming it
 * (`a`), each row-level security policy naming it (`r`) and its initial privileges (`i`). Read
 * from any database, it tells which databases hold something of the role — without entering
 * one — and how much; only those need to be entered, and one that cannot be is known by its
 * count. Objects are named by pg_identify_object, whatever their kind.
 * https://www.postgresql.org/docs/current/catalog-pg-shdepend.html
 * https://www.postgresql.org/docs/current/functions-info.html#FUNCTIONS-INFO-OBJECT
 */
import type { Queryable } from './pool.js';

/** What pg_shdepend records of a role in one database (`database` null: the shared catalogs). */
export interface DatabaseFootprint {
  readonly database: string | null;
  /** Objects the role owns there (deptype o). */
  readonly owned: number;
  /** ACL entries naming it (deptype a): privileges granted to it, or by it. */
  readonly acl: number;
  /** Row-level security policies naming it (deptype r). */
  readonly policies: number;
  /** Anything else recorded (initial privileges, deptype i). */
  readonly other: number;
  /** Event triggers and foreign-data wrappers it owns there: kinds only a superuser may own. */
  readonly superuserOnly: number;
  readonly allowConnections: boolean;
  /** has_database_privilege(…, 'CONNECT') for pgwarden's role. */
  readonly canConnect: boolean;
}

/**
 * Per database, what pg_shdepend records of `role` (by name; none when it does not exist): one
 * statement on any database of the server.
 */
export async function fetchFootprint(db: Queryable, role: string): Promise<DatabaseFootprint[]> {
  const { rows } = await db.query<{
    database: string | null;
    owned: string;
    acl: string;
    policies: string;
    other: string;
    superuser_only: string;
    allow_connections: boolean | null;
    can_connect: boolean | null;
  }>(
    `select d.datname::text as database,
            count(*) filter (where s.deptype = 'o') as owned,
            count(*) filter (where s.deptype = 'a') as acl,
            count(*) filter (where s.deptype = 'r') as policies,
            count(*) filter (where s.deptype not in ('o', 'a', 'r')) as other,
            count(*) filter (where s.deptype = 'o' and s.classid in ('pg_event_trigger'::regclass, 'pg_foreign_data_wrapper'::regclass)) as superuser_only,
            d.datallowconn as allow_connections,
            has_database_privilege(d.oid, 'CONNECT') as can_connect
     from pg_shdepend s
     left join pg_database d on d.oid = s.dbid
     where s.refclassid = 'pg_authid'::regclass
       and s.refobjid = (select oid from pg_roles where rolname = $1)
       -- a dbid that names no database is shared (0): databases, tablespaces, subscriptions, parameters
     group by d.datname, d.datallowconn, d.oid
     order by d.datname nulls first`,
    [role],
  );
  return rows.map((r) => ({
    database: r.database,
    owned: Number(r.owned),
    acl: Number(r.acl),
    policies: Number(r.policies),
    other: Number(r.other),
    superuserOnly: Number(r.superuser_only),
    allowConnections: r.database === null ? true : r.allow_connections === true,
    canConnect: r.database === null ? true : r.can_connect === true,
  }));
}

/** One object a role owns, as pg_identify_object names it. */
export interface IdentifiedObject {
  /** pg_identify_object's `type`: `table`, `function`, `event trigger`, `large object`, … */
  readonly type: string;
  readonly schema: string | null;
  /** pg_identify_object's `name` (quoted where needed), or its `identity` where it has no name of its own (routines, large objects, default privileges). */
  readonly name: string;
}

/**
 * Over pg_shdepend of `role` ($1, by name) in the database this connection is in (or, with
 * $2 true, the shared catalogs): the objects it owns. Row types, array types and the like are
 * not recorded there; sequences owned by a column are.
 */
const OWNED_HERE_SQL = `
  select o.type, o.schema, coalesce(o.name, o.identity) as name
  from pg_shdepend s
  cross join lateral pg_identify_object(s.classid, s.objid, s.objsubid) o
  where s.refclassid = 'pg_authid'::regclass
    and s.refobjid = (select oid from pg_roles where rolname = $1)
    and s.deptype = 'o'
    and s.dbid = case when $2 then 0 else (select oid from pg_database where datname = current_database()) end
  order by 1, 2 nulls first, 3`;

/** The objects `role` owns in the database `client` is connected to, or with `shared` in the shared catalogs. */
export async function fetchOwnedHere(client: Queryable, role: string, shared: boolean): Promise<IdentifiedObject[]> {
  const { rows } = await client.query<IdentifiedObject>(OWNED_HERE_SQL, [role, shared]);
  return rows;
}
