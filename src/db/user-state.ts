/**
 * What a role already has, for `adduser --update` (which adds only what is missing) and for the
 * checks before `adduser` acts: its attributes, its direct memberships, the databases and schemas
 * granted to it by name. Direct grants only: CONNECT that PUBLIC gives today can be revoked
 * tomorrow (`logout --lock` does), a grant to the role itself stays.
 */
import type { TargetDb } from './pool.js';

export interface ExistingUser {
  readonly login: boolean;
  readonly superuser: boolean;
  /** ISO-8601 UTC, `infinity`, `-infinity` (password logins refused for good), or null (none). */
  readonly validUntil: string | null;
  readonly connLimit: number;
  /** Roles it is a direct member of. */
  readonly memberOf: ReadonlySet<string>;
  /** Databases with CONNECT granted to the role itself. */
  readonly connect: ReadonlySet<string>;
  /** `schemaKey(database, schema)` → privileges granted to the role itself on that schema. */
  readonly schemaPrivileges: ReadonlyMap<string, ReadonlySet<string>>;
}

const USER_SQL = `
  select r.rolcanlogin as login, r.rolsuper as superuser, r.rolconnlimit as conn_limit,
         case when isfinite(r.rolvaliduntil) then to_char(r.rolvaliduntil at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
              else r.rolvaliduntil::text end as valid_until,
         array(select g.rolname::text from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid order by 1) as member_of,
         array(select d.datname::text from pg_database d cross join aclexplode(d.datacl) a
               where a.grantee = r.oid and a.privilege_type = 'CONNECT' order by 1) as connect
  from pg_roles r where r.rolname = $1`;

/** The role's attributes and shared grants, or null when it does not exist. */
export async function fetchExistingUser(
  db: TargetDb,
  role: string,
): Promise<Omit<ExistingUser, 'schemaPrivileges'> | null> {
  const { rows } = await db.query<{
    login: boolean;
    superuser: boolean;
    conn_limit: number;
    valid_until: string | null;
    member_of: string[];
    connect: string[];
  }>(USER_SQL, [role]);
  const row = rows[0];
  if (!row) return null;
  return {
    login: row.login,
    superuser: row.superuser,
    validUntil: row.valid_until,
    connLimit: row.conn_limit,
    memberOf: new Set(row.member_of),
    connect: new Set(row.connect),
  };
}

/** For one database: which of `schemas` exist, what the role holds directly on each, what pgwarden may grant. */
export interface SchemaState {
  readonly missing: string[];
  readonly privileges: Map<string, Set<string>>;
  /** schema → privileges pgwarden's own role holds WITH GRANT OPTION (a GRANT without it grants nothing). */
  readonly grantable: Map<string, Set<string>>;
}

const SCHEMA_STATE_SQL = `
  select s.name as schema, n.oid is not null as exists,
         array(select a.privilege_type from aclexplode(n.nspacl) a join pg_roles r on r.oid = a.grantee
               where r.rolname = $2 order by 1) as privileges,
         array(select p from unnest(array['USAGE', 'CREATE']) as p
               where n.oid is not null and has_schema_privilege(n.oid, p || ' WITH GRANT OPTION')) as grantable
  from unnest($1::text[]) as s(name) left join pg_namespace n on n.nspname = s.name`;

/** Reads the state of `schemas` in `database` (a connection is opened for it and closed). */
export async function fetchSchemaState(db: TargetDb, database: string, schemas: readonly string[], role: string): Promise<SchemaState> {
  const client = await db.connectTo(database);
  try {
    const { rows } = await client.query<{ schema: string; exists: boolean; privileges: string[]; grantable: string[] }>(SCHEMA_STATE_SQL, [schemas, role]);
    return {
      missing: rows.filter((r) => !r.exists).map((r) => r.schema),
      privileges: new Map(rows.filter((r) => r.exists).map((r) => [r.schema, new Set(r.privileges)])),
      grantable: new Map(rows.filter((r) => r.exists).map((r) => [r.schema, new Set(r.grantable)])),
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** What pgwarden's own role may do for `adduser`, checked before anything is done. */
export interface AddUserAuthority {
  /** Superuser or CREATEROLE: may create roles at all. */
  readonly canCreateRoles: boolean;
  /** Groups it may not grant (PostgreSQL 16+: needs ADMIN OPTION on each; before: CREATEROLE, and superuser for a superuser group). */
  readonly ungrantableGroups: string[];
  /** Databases whose CONNECT it may not grant (needs ownership or the grant option). */
  readonly ungrantableDatabases: string[];
  /** Whether it may ALTER `role` (an existing one; PostgreSQL 16+: ADMIN OPTION on it). */
  readonly canAlterRole: boolean;
}

const AUTHORITY_SQL = `
  with me as (select rolsuper, rolcreaterole, current_setting('server_version_num')::int >= 160000 as v16
              from pg_roles where rolname = current_user)
  select me.rolsuper or me.rolcreaterole as can_create,
         array(select g.rolname::text from pg_roles g
               where g.rolname = any($1::text[]) and not (
                 me.rolsuper
                 or pg_has_role(current_user, g.oid, 'MEMBER WITH ADMIN OPTION')
                 or (not me.v16 and me.rolcreaterole and not g.rolsuper))) as ungrantable_groups,
         array(select d.datname::text from pg_database d
               where d.datname = any($2::text[]) and not has_database_privilege(d.oid, 'CONNECT WITH GRANT OPTION')) as ungrantable_databases,
         coalesce((select me.rolsuper
                          or (me.v16 and me.rolcreaterole and pg_has_role(current_user, t.oid, 'MEMBER WITH ADMIN OPTION'))
                          or (not me.v16 and me.rolcreaterole and not t.rolsuper)
                   from pg_roles t where t.rolname = $3), true) as can_alter
  from me`;

export async function fetchAddUserAuthority(db: TargetDb, role: string, groups: readonly string[], databases: readonly string[]): Promise<AddUserAuthority> {
  const { rows } = await db.query<{ can_create: boolean; ungrantable_groups: string[]; ungrantable_databases: string[]; can_alter: boolean }>(
    AUTHORITY_SQL,
    [groups, databases, role],
  );
  const row = rows[0];
  return {
    canCreateRoles: row?.can_create === true,
    ungrantableGroups: row?.ungrantable_groups ?? [],
    ungrantableDatabases: row?.ungrantable_databases ?? [],
    canAlterRole: row?.can_alter !== false,
  };
}

/**
 * Databases among `databases` that `role` (perhaps not created yet) could not connect to: no CONNECT
 * of its own, through PUBLIC or through `groups`. Those in `granted` are about to be granted.
 */
export async function unreachableDatabases(db: TargetDb, databases: readonly string[], role: string, groups: readonly string[], granted: ReadonlySet<string>): Promise<string[]> {
  const candidates = [...new Set(databases)].filter((d) => !granted.has(d));
  if (candidates.length === 0) return [];
  const { rows } = await db.query<{ database: string; reachable: boolean }>(
    `select d.datname::text as database,
            coalesce(has_database_privilege(r.oid, d.oid, 'CONNECT'), false)
            or exists (select 1 from aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a where a.grantee = 0 and a.privilege_type = 'CONNECT')
            or exists (select 1 from pg_roles g where g.rolname = any($3::text[]) and has_database_privilege(g.oid, d.oid, 'CONNECT')) as reachable
     from pg_database d left join pg_roles r on r.rolname = $2
     where d.datname = any($1::text[])`,
    [candidates, role, groups],
  );
  return rows.filter((r) => !r.reachable).map((r) => r.database);
}
