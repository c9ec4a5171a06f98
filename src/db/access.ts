/**
 * The facts behind `pgwarden access`: what a role may do, read from the catalogs with the server's
 * own privilege functions (`has_*_privilege`, which know about PUBLIC, inheritance, ownership and
 * the predefined roles), and where each right comes from, read from the ACLs (`aclexplode` over
 * the ACL or, where it was never changed, the built-in default `acldefault`).
 *
 * Membership is judged with `pg_has_role`: 'MEMBER' (any membership, direct or not) against
 * 'USAGE' (the role has the group's privileges without SET ROLE). PostgreSQL 16 made inheritance a
 * property of each grant (`pg_auth_members.inherit_option`) instead of the member's `rolinherit`;
 * `pg_has_role` follows whichever rule the server has, so one query serves 14 to 18.
 */
import type pg from 'pg';
import { forEachDatabase, type SkippedDatabase } from './databases.js';
import type { TargetDb, Queryable } from './pool.js';

/** How a grantee of an ACL item reaches the role. */
export type SourceKind = 'direct' | 'public' | 'group' | 'member_only';

/** One ACL item that concerns the role: the privilege, who it was granted to, and how that reaches the role. */
export interface AclSource {
  readonly privilege: string;
  /** A role name, or `PUBLIC`. */
  readonly grantee: string;
  /** `member_only`: a group the role belongs to without inheriting its privileges (SET ROLE needed). */
  readonly how: SourceKind;
}

/**
 * The ACL items of `acl` (an SQL expression) granted to the role `r.oid`, PUBLIC, or a group it
 * belongs to, as JSON. A CASE guards pg_has_role: grantee 0 is PUBLIC, not a role, and SQL does
 * not promise to evaluate an OR left to right.
 */
function sourcesOf(acl: string): string {
  return `(select coalesce(json_agg(json_build_object(
             'privilege', a.privilege_type,
             'grantee', case when a.grantee = 0 then 'PUBLIC' else g.rolname::text end,
             'how', case when a.grantee = 0 then 'public' when a.grantee = r.oid then 'direct'
                         when pg_has_role(r.oid, a.grantee, 'USAGE') then 'group' else 'member_only' end)
             order by a.privilege_type, g.rolname), '[]'::json)
           from aclexplode(${acl}) a left join pg_roles g on g.oid = a.grantee
           where case when a.grantee = 0 or a.grantee = r.oid then true else pg_has_role(r.oid, a.grantee, 'MEMBER') end)`;
}

/** The role itself: attributes and every role it is a member of. */
export interface RoleFacts {
  readonly role: string;
  readonly login: boolean;
  readonly superuser: boolean;
  readonly bypassRls: boolean;
  /** ISO-8601 UTC, `infinity`, or null (no expiry). */
  readonly validUntil: string | null;
  readonly expired: boolean;
  readonly connLimit: number;
  /** Every role it is a member of, directly or not: whether it has its privileges, and may SET ROLE to it. */
  readonly memberOf: readonly { role: string; inherits: boolean; canSet: boolean; direct: boolean }[];
}

const ROLE_FACTS_SQL = `
  select r.rolname::text as role, r.rolcanlogin as login, r.rolsuper as superuser, r.rolbypassrls as bypass_rls,
         r.rolconnlimit as conn_limit,
         case when isfinite(r.rolvaliduntil) then to_char(r.rolvaliduntil at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
              else r.rolvaliduntil::text end as valid_until,
         coalesce(r.rolvaliduntil < now(), false) as expired,
         (select coalesce(json_agg(json_build_object(
                   'role', g.rolname::text,
                   'inherits', pg_has_role(r.oid, g.oid, 'USAGE'),
                   -- PostgreSQL 16 made SET ROLE an option of each grant; before, any member may.
                   'canSet', case when current_setting('server_version_num')::int >= 160000
                                  then pg_has_role(r.oid, g.oid, 'SET') else true end,
                   'direct', exists (select 1 from pg_auth_members m where m.member = r.oid and m.roleid = g.oid))
                 order by g.rolname), '[]'::json)
          from pg_roles g
          where g.oid <> r.oid and not r.rolsuper and pg_has_role(r.oid, g.oid, 'MEMBER')) as member_of
  from pg_roles r where r.rolname = $1`;

export async function fetchRoleFacts(db: Queryable, role: string): Promise<RoleFacts | null> {
  const { rows } = await db.query<{
    role: string;
    login: boolean;
    superuser: boolean;
    bypass_rls: boolean;
    conn_limit: number;
    valid_until: string | null;
    expired: boolean;
    member_of: RoleFacts['memberOf'];
  }>(ROLE_FACTS_SQL, [role]);
  const row = rows[0];
  if (!row) return null;
  return {
    role: row.role,
    login: row.login,
    superuser: row.superuser,
    bypassRls: row.bypass_rls,
    validUntil: row.valid_until,
    expired: row.expired,
    connLimit: row.conn_limit,
    memberOf: row.member_of,
  };
}

/** A right: whether the role has it, and the ACL items it comes through. */
export interface RightFacts {
  readonly granted: boolean;
  readonly sources: readonly AclSource[];
}

export interface DatabaseFacts {
  readonly database: string;
  readonly owner: string;
  readonly allowConnections: boolean;
  /** datconnlimit: 0 lets only superusers in, -1 is no limit. */
  readonly connLimit: number;
  /** Whether PUBLIC holds CONNECT (the default; `logout --lock` and hardening guides revoke it). */
  readonly publicConnect: boolean;
  readonly connect: RightFacts;
  readonly create: RightFacts;
  readonly temporary: RightFacts;
}

const DATABASE_FACTS_SQL = `
  with r as (select oid from pg_roles where rolname = $1)
  select d.datname::text as database, pg_get_userbyid(d.datdba)::text as owner, d.datallowconn as allow_connections,
         d.datconnlimit as conn_limit,
         exists (select 1 from aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                 where a.grantee = 0 and a.privilege_type = 'CONNECT') as public_connect,
         has_database_privilege(r.oid, d.oid, 'CONNECT') as connect,
         has_database_privilege(r.oid, d.oid, 'CREATE') as "create",
         has_database_privilege(r.oid, d.oid, 'TEMPORARY') as temporary,
         ${sourcesOf("coalesce(d.datacl, acldefault('d', d.datdba))")} as sources
  from pg_database d cross join r
  where not d.datistemplate and ($2::text is null or d.datname = $2)
  order by d.datname`;

function rightOf(granted: boolean, sources: readonly AclSource[], privilege: string): RightFacts {
  return { granted, sources: sources.filter((s) => s.privilege === privilege) };
}

/** Every database but the templates (or only `database`), with the role's rights on it. */
export async function fetchDatabaseFacts(db: Queryable, role: string, database?: string): Promise<DatabaseFacts[]> {
  const { rows } = await db.query<{
    database: string;
    owner: string;
    allow_connections: boolean;
    conn_limit: number;
    public_connect: boolean;
    connect: boolean;
    create: boolean;
    temporary: boolean;
    sources: AclSource[];
  }>(DATABASE_FACTS_SQL, [role, database ?? null]);
  return rows.map((r) => ({
    database: r.database,
    owner: r.owner,
    allowConnections: r.allow_connections,
    connLimit: r.conn_limit,
    publicConnect: r.public_connect,
    connect: rightOf(r.connect, r.sources, 'CONNECT'),
    create: rightOf(r.create, r.sources, 'CREATE'),
    temporary: rightOf(r.temporary, r.sources, 'TEMPORARY'),
  }));
}

/** The privileges counted per object kind. */
export const RELATION_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'] as const;
export const SEQUENCE_PRIVILEGES = ['USAGE', 'SELECT', 'UPDATE'] as const;

export type ObjectKind = 'table' | 'view' | 'sequence';

/** Objects of one kind in a schema, and on how many of them the role holds each privilege. */
export interface ObjectCounts {
  readonly kind: ObjectKind;
  readonly total: number;
  readonly privileges: Readonly<Record<string, number>>;
}

export interface SchemaFacts {
  readonly schema: string;
  readonly owner: string;
  readonly usage: RightFacts;
  readonly create: RightFacts;
  readonly objects: readonly ObjectCounts[];
}

/** A default privilege (ALTER DEFAULT PRIVILEGES) that will give the role rights on new objects. */
export interface DefaultPrivilegeFacts {
  /** Objects created by this role get the grant. */
  readonly creator: string;
  /** Only objects created in this schema; null: in any schema. */
  readonly schema: string | null;
  readonly objectType: string;
  readonly privileges: readonly string[];
  readonly grantee: string;
  readonly how: SourceKind;
}

export interface DatabaseAccess {
  readonly schemas: SchemaFacts[];
  readonly defaultPrivileges: DefaultPrivilegeFacts[];
}

// User schemas only: pg_catalog, pg_toast, temporary schemas and information_schema are the system's.
const SCHEMAS_SQL = `
  with r as (select oid from pg_roles where rolname = $1)
  select n.nspname::text as schema, pg_get_userbyid(n.nspowner)::text as owner,
         has_schema_privilege(r.oid, n.oid, 'USAGE') as usage,
         has_schema_privilege(r.oid, n.oid, 'CREATE') as "create",
         ${sourcesOf("coalesce(n.nspacl, acldefault('n', n.nspowner))")} as sources
  from pg_namespace n cross join r
  where n.nspname !~ '^pg_' and n.nspname <> 'information_schema' and ($2::text is null or n.nspname = $2)
  order by n.nspname`;

const relationCounts = RELATION_PRIVILEGES.map(
  (p) => `count(*) filter (where has_table_privilege(r.oid, c.oid, '${p}')) as "${p}"`,
).join(',\n         ');

const RELATIONS_SQL = `
  with r as (select oid from pg_roles where rolname = $1)
  select n.nspname::text as schema,
         case when c.relkind in ('v', 'm') then 'view' else 'table' end as kind,
         count(*)::int as total,
         ${relationCounts}
  from pg_class c join pg_namespace n on n.oid = c.relnamespace cross join r
  where c.relkind in ('r', 'p', 'f', 'v', 'm')
    and n.nspname !~ '^pg_' and n.nspname <> 'information_schema' and ($2::text is null or n.nspname = $2)
  group by 1, 2 order by 1, 2`;

const SEQUENCES_SQL = `
  with r as (select oid from pg_roles where rolname = $1)
  select n.nspname::text as schema, 'sequence' as kind, count(*)::int as total,
         ${SEQUENCE_PRIVILEGES.map((p) => `count(*) filter (where has_sequence_privilege(r.oid, c.oid, '${p}')) as "${p}"`).join(',\n         ')}
  from pg_class c join pg_namespace n on n.oid = c.relnamespace cross join r
  where c.relkind = 'S'
    and n.nspname !~ '^pg_' and n.nspname <> 'information_schema' and ($2::text is null or n.nspname = $2)
  group by 1 order by 1`;

// Default privileges name the grantee in defaclacl; only those reaching the role are kept.
const DEFAULT_PRIVILEGES_SQL = `
  with r as (select oid from pg_roles where rolname = $1)
  select pg_get_userbyid(d.defaclrole)::text as creator, n.nspname::text as schema,
         case d.defaclobjtype when 'r' then 'tables' when 'S' then 'sequences' when 'f' then 'functions'
                              when 'T' then 'types' when 'n' then 'schemas' else d.defaclobjtype::text end as object_type,
         array_agg(a.privilege_type order by a.privilege_type) as privileges,
         case when a.grantee = 0 then 'PUBLIC' else g.rolname::text end as grantee,
         case when a.grantee = 0 then 'public' when a.grantee = r.oid then 'direct'
              when pg_has_role(r.oid, a.grantee, 'USAGE') then 'group' else 'member_only' end as how
  from pg_default_acl d
  left join pg_namespace n on n.oid = d.defaclnamespace
  cross join aclexplode(d.defaclacl) a
  left join pg_roles g on g.oid = a.grantee
  cross join r
  where case when a.grantee = 0 or a.grantee = r.oid then true else pg_has_role(r.oid, a.grantee, 'MEMBER') end
    and ($2::text is null or n.nspname is null or n.nspname = $2)
  group by 1, 2, 3, 5, 6 order by 1, 2 nulls first, 3, 5`;

/** The role's rights in the database `client` is connected to (optionally one schema only). */
export async function fetchDatabaseAccess(client: Queryable, role: string, schema?: string): Promise<DatabaseAccess> {
  const params = [role, schema ?? null];
  const [schemas, relations, sequences, defaults] = [
    await client.query<{ schema: string; owner: string; usage: boolean; create: boolean; sources: AclSource[] }>(SCHEMAS_SQL, params),
    await client.query<Record<string, string | number>>(RELATIONS_SQL, params),
    await client.query<Record<string, string | number>>(SEQUENCES_SQL, params),
    await client.query<{ creator: string; schema: string | null; object_type: string; privileges: string[]; grantee: string; how: SourceKind }>(
      DEFAULT_PRIVILEGES_SQL,
      params,
    ),
  ];
  const objects = new Map<string, ObjectCounts[]>();
  for (const [rows, privileges] of [
    [relations.rows, RELATION_PRIVILEGES],
    [sequences.rows, SEQUENCE_PRIVILEGES],
  ] as const) {
    for (const row of rows) {
      const counts: ObjectCounts = {
        kind: row.kind as ObjectKind,
        total: Number(row.total),
        privileges: Object.fromEntries(privileges.map((p) => [p, Number(row[p])])),
      };
      objects.set(String(row.schema), [...(objects.get(String(row.schema)) ?? []), counts]);
    }
  }
  return {
    schemas: schemas.rows.map((s) => ({
      schema: s.schema,
      owner: s.owner,
      usage: rightOf(s.usage, s.sources, 'USAGE'),
      create: rightOf(s.create, s.sources, 'CREATE'),
      objects: objects.get(s.schema) ?? [],
    })),
    defaultPrivileges: defaults.rows.map((d) => ({
      creator: d.creator,
      schema: d.schema,
      objectType: d.object_type,
      privileges: d.privileges,
      grantee: d.grantee,
      how: d.how,
    })),
  };
}

/** Visits each database (or only `database`) and reads the role's rights there. */
export async function visitDatabaseAccess(
  db: TargetDb,
  role: string,
  options: { database?: string; schema?: string },
): Promise<{ results: { database: string; value: DatabaseAccess }[]; skipped: SkippedDatabase[] }> {
  return forEachDatabase(
    db,
    (client: pg.Client) => fetchDatabaseAccess(client, role, options.schema),
    options.database === undefined ? undefined : (name) => name === options.database,
  );
}

/** One relation, for `--table`: what it is, and every right on it with its sources. */
export interface TableFacts {
  readonly schema: string;
  readonly name: string;
  readonly kind: ObjectKind;
  readonly owner: string;
  /** The role is the owner, or has the owner's privileges (row security does not apply then, unless forced). */
  readonly ownedByRole: boolean;
  readonly rowSecurity: boolean;
  readonly forceRowSecurity: boolean;
  /** A view with security_invoker (PostgreSQL 15+): it reads its tables with the caller's rights, not its owner's. */
  readonly securityInvoker: boolean;
  /** Sequences whose nextval() a column default calls (serial) and the role has no USAGE on. */
  readonly defaultSequencesDenied: readonly { schema: string; name: string }[];
  readonly schemaUsage: RightFacts;
  /** Privilege → whether the role holds it on the relation (table-level). */
  readonly privileges: Readonly<Record<string, boolean>>;
  readonly sources: readonly AclSource[];
  /** Privilege → columns the role holds it on without holding it on the whole relation. */
  readonly columns: Readonly<Record<string, readonly string[]>>;
}

const FIND_RELATION_SQL = `
  select c.oid::int8::text as oid, n.nspname::text as schema, c.relname::text as name
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where c.relname = $1 and ($2::text is null or n.nspname = $2) and c.relkind in ('r', 'p', 'f', 'v', 'm', 'S')
  order by n.nspname`;

/** Relations named `table` (in `schema` when given): there may be several, in different schemas. */
export async function findRelations(client: Queryable, table: string, schema?: string): Promise<{ oid: string; schema: string; name: string }[]> {
  const { rows } = await client.query<{ oid: string; schema: string; name: string }>(FIND_RELATION_SQL, [table, schema ?? null]);
  return rows;
}

const TABLE_FACTS_SQL = `
  with r as (select oid from pg_roles where rolname = $1)
  select n.nspname::text as schema, c.relname::text as name, c.relkind::text as relkind,
         pg_get_userbyid(c.relowner)::text as owner, pg_has_role(r.oid, c.relowner, 'USAGE') as owned_by_role,
         c.relrowsecurity as row_security, c.relforcerowsecurity as force_row_security,
         coalesce(c.reloptions::text[] && array['security_invoker=true', 'security_invoker=on', 'security_invoker=1'], false) as security_invoker,
         (select coalesce(json_agg(json_build_object('schema', sn.nspname::text, 'name', sq.relname::text)), '[]'::json)
          from pg_attrdef ad
          join pg_depend dp on dp.classid = 'pg_attrdef'::regclass and dp.objid = ad.oid and dp.refclassid = 'pg_class'::regclass
          join pg_class sq on sq.oid = dp.refobjid and sq.relkind = 'S'
          join pg_namespace sn on sn.oid = sq.relnamespace
          -- the default also depends on its own table's column: guard the sequence check with a CASE
          where ad.adrelid = c.oid and case when sq.relkind = 'S' then not has_sequence_privilege(r.oid, sq.oid, 'USAGE') else false end) as default_sequences_denied,
         has_schema_privilege(r.oid, n.oid, 'USAGE') as schema_usage,
         ${sourcesOf("coalesce(n.nspacl, acldefault('n', n.nspowner))")} as schema_sources,
         ${sourcesOf(`coalesce(c.relacl, acldefault((case when c.relkind = 'S' then 's' else 'r' end)::"char", c.relowner))`)} as sources,
         (select json_object_agg(p, case when c.relkind = 'S' then has_sequence_privilege(r.oid, c.oid, p)
                                         else has_table_privilege(r.oid, c.oid, p) end)
          from unnest(case when c.relkind = 'S' then $3::text[] else $4::text[] end) as p) as privileges,
         (select coalesce(json_object_agg(p, cols), '{}'::json) from (
            select p, json_agg(a.attname::text order by a.attnum) as cols
            from pg_attribute a cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) as p
            where c.relkind <> 'S' and a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
              and has_column_privilege(r.oid, c.oid, a.attnum, p) and not has_table_privilege(r.oid, c.oid, p)
            group by p) per_privilege) as columns
  from pg_class c join pg_namespace n on n.oid = c.relnamespace cross join r
  where c.oid = $2::oid`;

export async function fetchTableFacts(client: Queryable, role: string, oid: string): Promise<TableFacts> {
  const { rows } = await client.query<{
    schema: string;
    name: string;
    relkind: string;
    owner: string;
    owned_by_role: boolean;
    row_security: boolean;
    force_row_security: boolean;
    security_invoker: boolean;
    default_sequences_denied: { schema: string; name: string }[];
    schema_usage: boolean;
    schema_sources: AclSource[];
    sources: AclSource[];
    privileges: Record<string, boolean>;
    columns: Record<string, string[]>;
  }>(TABLE_FACTS_SQL, [role, oid, SEQUENCE_PRIVILEGES, RELATION_PRIVILEGES]);
  const row = rows[0];
  if (!row) throw new Error(`relation ${oid} disappeared while it was being read`);
  const kind: ObjectKind = row.relkind === 'S' ? 'sequence' : row.relkind === 'v' || row.relkind === 'm' ? 'view' : 'table';
  return {
    schema: row.schema,
    name: row.name,
    kind,
    owner: row.owner,
    ownedByRole: row.owned_by_role,
    rowSecurity: row.row_security,
    forceRowSecurity: row.force_row_security,
    securityInvoker: row.security_invoker,
    defaultSequencesDenied: row.default_sequences_denied,
    schemaUsage: rightOf(row.schema_usage, row.schema_sources, 'USAGE'),
    privileges: row.privileges,
    sources: row.sources,
    columns: row.columns,
  };
}
