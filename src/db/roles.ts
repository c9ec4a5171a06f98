/**
 * Facts about a few roles that the role snapshot does not carry (it stays one cheap query for
 * 10,000 roles): asked only for the roles a policy or command acts on.
 */
import type { Queryable } from './pool.js';

/**
 * For each role, the databases it can connect to now (directly, through PUBLIC, a group, or
 * ownership). A database that refuses all connections (template0) is nobody's way in: left out.
 */
export async function fetchConnectableDatabases(db: Queryable, roles: readonly string[]): Promise<Map<string, string[]>> {
  if (roles.length === 0) return new Map();
  const { rows } = await db.query<{ role: string; databases: string[] }>(
    `select r.rolname::text as role, array_agg(d.datname::text order by d.datname) as databases
     from pg_roles r cross join pg_database d
     where r.rolname = any($1::text[]) and d.datallowconn and has_database_privilege(r.oid, d.oid, 'CONNECT')
     group by r.rolname`,
    [roles],
  );
  return new Map(rows.map((r) => [r.role, r.databases]));
}

/**
 * Why CONNECT on `database` still reaches `role`: its own grant (made by another grantor, which
 * a REVOKE by pgwarden's role does not remove), PUBLIC, groups it belongs to that were granted
 * CONNECT, or ownership. Empty when it no longer does.
 */
export async function connectPaths(db: Queryable, role: string, database: string): Promise<string[]> {
  const { rows } = await db.query<{ path: string }>(
    `with d as (select oid, datdba, coalesce(datacl, acldefault('d', datdba)) as acl from pg_database where datname = $2),
          r as (select oid from pg_roles where rolname = $1)
     select 'the owner of the database' as path from d, r where d.datdba = r.oid
     union all
     select 'its own grant, made by ' || coalesce(gr.rolname, 'another role')
     from d cross join aclexplode(d.acl) a
     left join pg_roles gr on gr.oid = a.grantor
     cross join r
     where a.privilege_type = 'CONNECT' and a.grantee = r.oid
     union all
     select case when a.grantee = 0 then 'PUBLIC' else 'group ' || g.rolname end
     from d cross join aclexplode(d.acl) a
     left join pg_roles g on g.oid = a.grantee
     cross join r
     where a.privilege_type = 'CONNECT' and a.grantee <> r.oid
       and (a.grantee = 0 or pg_has_role(r.oid, a.grantee, 'USAGE'))`,
    [role, database],
  );
  return rows.map((r) => r.path);
}

/** What a command needs to know of a role before acting on it. */
export interface RoleFacts {
  readonly login: boolean;
  readonly superuser: boolean;
}

/**
 * The facts of `roles` (those that exist) and who pgwarden is (session and current role, the
 * bootstrap superuser): one round trip, before a command acts.
 */
export async function fetchRoleFacts(
  db: Queryable,
  roles: readonly string[],
): Promise<{ roles: Map<string, RoleFacts>; self: { role: string; currentRole: string; bootstrapRole: string } }> {
  const { rows } = await db.query<{ role: string | null; login: boolean | null; superuser: boolean | null; session_role: string; current_role: string; bootstrap_role: string }>(
    `select r.rolname::text as role, r.rolcanlogin as login, r.rolsuper as superuser,
            session_user::text as session_role, current_user::text as current_role,
            (select rolname::text from pg_roles where oid = 10) as bootstrap_role
     from (select 1) one left join pg_roles r on r.rolname = any($1::text[])`,
    [roles],
  );
  const first = rows[0];
  return {
    roles: new Map(rows.filter((r) => r.role !== null).map((r) => [r.role as string, { login: r.login === true, superuser: r.superuser === true }])),
    self: { role: first?.session_role ?? '', currentRole: first?.current_role ?? '', bootstrapRole: first?.bootstrap_role ?? '' },
  };
}

/**
 * Why pgwarden's role may not ALTER each of `roles` (NOLOGIN, a password), or null where it may:
 * as AlterRole decides (src/backend/commands/user.c). A superuser may alter any role; a superuser
 * role only a superuser may; before PostgreSQL 16 a replication role too; any other role needs
 * CREATEROLE and, from 16, ADMIN OPTION on it (https://www.postgresql.org/docs/16/sql-alterrole.html).
 * Roles that do not exist are absent from the map.
 */
export async function fetchAlterRefusals(db: Queryable, roles: readonly string[]): Promise<Map<string, string | null>> {
  if (roles.length === 0) return new Map();
  const { rows } = await db.query<{ role: string; refused: string | null }>(
    `select r.rolname::text as role,
            case when me.rolsuper then null
                 when r.rolsuper then 'a superuser role: only a superuser may alter it'
                 when r.rolreplication and current_setting('server_version_num')::int < 160000
                   then 'a replication role: before PostgreSQL 16 only a superuser may alter it'
                 when not me.rolcreaterole then 'pgwarden''s role lacks CREATEROLE'
                 when current_setting('server_version_num')::int >= 160000 and not pg_has_role(r.oid, 'MEMBER WITH ADMIN OPTION')
                   then 'pgwarden''s role lacks ADMIN OPTION on it (PostgreSQL 16+)'
            end as refused
     from pg_roles r cross join (select rolsuper, rolcreaterole from pg_roles where rolname = current_user) me
     where r.rolname = any($1::text[])`,
    [roles],
  );
  return new Map(rows.map((r) => [r.role, r.refused]));
}

/** What REASSIGN OWNED, DROP OWNED and DROP ROLE of `role` to `newOwner` need of pgwarden's role. */
export interface ReassignRights {
  readonly superuser: boolean;
  /** Has the privileges of `role` (REASSIGN OWNED and DROP OWNED need them). */
  readonly rolePrivileges: boolean;
  /** May give objects to `newOwner`: its privileges before 16, SET ROLE to it from 16. */
  readonly newOwnerOk: boolean;
  readonly newOwnerSuperuser: boolean;
  readonly serverVersionNum: number;
  /** Per grantor asked: whether pgwarden's role has its privileges (a REVOKE is made as the grantor). */
  readonly grantors: ReadonlyMap<string, boolean>;
}

/**
 * The rights of pgwarden's role over `role`, `newOwner` and `grantors` (names), as the server
 * checks them in ReassignOwnedObjects (src/backend/commands/user.c): the privileges of each old
 * role, and of the new one (from PostgreSQL 16: the right to SET ROLE to it).
 * https://www.postgresql.org/docs/current/sql-reassign-owned.html
 */
export async function fetchReassignRights(db: Queryable, role: string, newOwner: string, grantors: readonly string[]): Promise<ReassignRights> {
  const version = Number((await db.query<{ v: string }>("select current_setting('server_version_num') as v")).rows[0]?.v ?? 0);
  // 'SET' is a privilege pg_has_role knows from 16 on only: the text is chosen, not the CASE.
  const toNewOwner = version >= 160000 ? `pg_has_role($2, 'SET')` : `pg_has_role($2, 'USAGE')`;
  const { rows } = await db.query<{ superuser: boolean; role_privileges: boolean; new_owner_ok: boolean; new_owner_superuser: boolean; grantors: { name: string; ok: boolean }[] | null }>(
    `select (select rolsuper from pg_roles where rolname = current_user) as superuser,
            pg_has_role($1, 'USAGE') as role_privileges,
            ${toNewOwner} as new_owner_ok,
            coalesce((select rolsuper from pg_roles where rolname = $2), false) as new_owner_superuser,
            (select json_agg(json_build_object('name', g.rolname, 'ok', pg_has_role(g.oid, 'USAGE')))
             from pg_roles g where g.rolname = any($3::text[])) as grantors`,
    [role, newOwner, grantors],
  );
  const r = rows[0];
  return {
    superuser: r?.superuser === true,
    rolePrivileges: r?.role_privileges === true,
    newOwnerOk: r?.new_owner_ok === true,
    newOwnerSuperuser: r?.new_owner_superuser === true,
    serverVersionNum: version,
    grantors: new Map((r?.grantors ?? []).map((g) => [g.name, g.ok])),
  };
}
