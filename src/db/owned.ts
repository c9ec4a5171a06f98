/**
 * What a role owns, in every database: relations of every kind, routines, schemas, types and
 * domains, plus the databases themselves. The cheat-sheet query over pg_tables alone misses all
 * but plain tables. System schemas are left out: nothing in them can be reassigned.
 */
import type pg from 'pg';
import { forEachDatabase, type SkippedDatabase } from './databases.js';
import type { TargetDb } from './pool.js';

export type OwnedType =
  | 'database'
  | 'schema'
  | 'table'
  | 'partitioned table'
  | 'view'
  | 'materialized view'
  | 'sequence'
  | 'foreign table'
  | 'function'
  | 'procedure'
  | 'aggregate'
  | 'type'
  | 'domain';

/** One owned object (DESIGN.md `owned` shape). */
export interface OwnedObject {
  readonly database: string;
  readonly type: OwnedType;
  /** null for schemas and databases. */
  readonly schema: string | null;
  /** Routines carry their argument types: `f(integer, text)`, so overloads stay distinct. */
  readonly name: string;
}

const SYSTEM_SCHEMA = `(n.nspname in ('pg_catalog', 'information_schema')
    or n.nspname like 'pg\\_toast%' or n.nspname like 'pg\\_temp\\_%')`;

export const OWNED_IN_DATABASE_SQL = `
  with owner as (select oid from pg_roles where rolname = $1)
  select case c.relkind
           when 'r' then 'table' when 'p' then 'partitioned table' when 'v' then 'view'
           when 'm' then 'materialized view' when 'S' then 'sequence' when 'f' then 'foreign table'
         end as type,
         n.nspname::text as schema, c.relname::text as name
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where c.relowner = (select oid from owner)
    and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
    and not ${SYSTEM_SCHEMA}
  union all
  select case p.prokind when 'p' then 'procedure' when 'a' then 'aggregate' else 'function' end,
         n.nspname::text, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where p.proowner = (select oid from owner) and not ${SYSTEM_SCHEMA}
  union all
  select 'schema', null, n.nspname::text
  from pg_namespace n
  where n.nspowner = (select oid from owner) and not ${SYSTEM_SCHEMA}
  union all
  select case t.typtype when 'd' then 'domain' else 'type' end, n.nspname::text, t.typname::text
  from pg_type t join pg_namespace n on n.oid = t.typnamespace
  where t.typowner = (select oid from owner)
    and not ${SYSTEM_SCHEMA}
    -- base, composite, domain, enum, range; multiranges come with their range
    and t.typtype in ('b', 'c', 'd', 'e', 'r')
    -- a table's row type comes with the table; only stand-alone composite types count
    and (t.typtype <> 'c' or exists (select 1 from pg_class c where c.oid = t.typrelid and c.relkind = 'c'))
    -- array types come with their element type
    and not exists (select 1 from pg_type el where el.typarray = t.oid)
  order by 1, 2, 3`;

const OWNED_DATABASES_SQL = `
  select d.datname::text as name
  from pg_database d join pg_roles r on r.oid = d.datdba
  where r.rolname = $1
  order by 1`;

export interface OwnedReport {
  readonly objects: OwnedObject[];
  /** Databases that could not be entered: the list is incomplete for them. */
  readonly skipped: SkippedDatabase[];
}

/** Objects `role` owns in the database `client` is connected to. */
export async function fetchOwnedInDatabase(client: pg.ClientBase, database: string, role: string): Promise<OwnedObject[]> {
  const { rows } = await client.query<{ type: OwnedType; schema: string | null; name: string }>(OWNED_IN_DATABASE_SQL, [role]);
  return rows.map((r) => ({ database, type: r.type, schema: r.schema, name: r.name }));
}

/** Everything `role` owns on the server: its databases, then each database's objects. */
export async function fetchOwned(db: TargetDb, role: string): Promise<OwnedReport> {
  const { rows } = await db.query<{ name: string }>(OWNED_DATABASES_SQL, [role]);
  const databases: OwnedObject[] = rows.map((r) => ({ database: r.name, type: 'database', schema: null, name: r.name }));
  const visit = await forEachDatabase(db, (client, database) => fetchOwnedInDatabase(client, database, role));
  return { objects: [...databases, ...visit.results.flatMap((r) => r.value)], skipped: visit.skipped };
}
