/**
 * Facts about a few roles that the role snapshot does not carry (it stays one cheap query for
 * 10,000 roles): asked only for the roles a policy or command acts on.
 */
import type { Queryable } from './pool.js';
import { quoteIdent } from './quote.js';
import { serverFacts } from './server.js';

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
  /** CREATEDB: a database changes owner only by a role that has it (ALTER DATABASE … OWNER). */
  readonly createdb: boolean;
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
  const version = (await serverFacts(db)).versionNum;
  // 'SET' is a privilege pg_has_role knows from 16 on only: the text is chosen, not the CASE.
  const toNewOwner = version >= 160000 ? `pg_has_role($2, 'SET')` : `pg_has_role($2, 'USAGE')`;
  const { rows } = await db.query<{ superuser: boolean; createdb: boolean; role_privileges: boolean; new_owner_ok: boolean; new_owner_superuser: boolean; grantors: { name: string; ok: boolean }[] | null }>(
    `select (select rolsuper from pg_roles where rolname = current_user) as superuser,
            (select rolcreatedb from pg_roles where rolname = current_user) as createdb,
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
    createdb: r?.createdb === true,
    rolePrivileges: r?.role_privileges === true,
    newOwnerOk: r?.new_owner_ok === true,
    newOwnerSuperuser: r?.new_owner_superuser === true,
    serverVersionNum: version,
    grantors: new Map((r?.grantors ?? []).map((g) => [g.name, g.ok])),
  };
}

/** An ownership rule a REASSIGN OWNED to `newOwner` would break in one database, with its fix. */
export interface OwnershipGap {
  readonly object: string;
  readonly detail: string;
  readonly fix: string | null;
}

/**
 * In the database `client` is in, for a caller that is not a superuser: the rules that ALTER …
 * OWNER applies to some kinds, and REASSIGN OWNED too — a foreign server's new owner needs USAGE
 * on its foreign-data wrapper; a publication's needs CREATE on the database, and a FOR ALL TABLES
 * publication a superuser (https://www.postgresql.org/docs/current/sql-alterserver.html,
 * sql-alterpublication.html) — and DROP OWNED's on row-level security policies naming the role
 * (it needs the privileges of the table's owner: sql-drop-owned.html). Server and publication
 * rules are waived when `newOwner` is a superuser.
 */
export async function fetchOwnershipGaps(client: Queryable, role: string, newOwner: string): Promise<OwnershipGap[]> {
  const { rows } = await client.query<{ kind: string; name: string; other: string | null; ok: boolean }>(
    `with r as (select oid from pg_roles where rolname = $1),
          n as (select oid, rolsuper from pg_roles where rolname = $2)
     select 'server' as kind, quote_ident(s.srvname) as name, quote_ident(w.fdwname) as other,
            has_foreign_data_wrapper_privilege(n.oid, w.oid, 'USAGE') as ok
     from pg_foreign_server s join pg_foreign_data_wrapper w on w.oid = s.srvfdw, r, n
     where s.srvowner = r.oid and not n.rolsuper
     union all
     select case when p.puballtables then 'all tables publication' else 'publication' end, quote_ident(p.pubname), quote_ident(current_database()),
            not p.puballtables and has_database_privilege(n.oid, current_database(), 'CREATE')
     from pg_publication p, r, n
     where p.pubowner = r.oid and not n.rolsuper
     union all
     -- DROP OWNED takes the role out of a policy (or drops the policy when it is its only role)
     -- as the table's owner would: only with the owner's privileges
     select 'policy', quote_ident(pol.polname) || ' ON ' || quote_ident(ns.nspname) || '.' || quote_ident(c.relname),
            coalesce((select string_agg(quote_ident(o.rolname), ', ' order by o.rolname)
                      from pg_roles o where o.oid = any(pol.polroles) and o.oid <> r.oid), ''),
            pg_has_role(c.relowner, 'USAGE')
     from pg_policy pol join pg_class c on c.oid = pol.polrelid join pg_namespace ns on ns.oid = c.relnamespace, r
     where r.oid = any(pol.polroles)`,
    [role, newOwner],
  );
  const heir = quoteIdent(newOwner);
  return rows
    .filter((g) => !g.ok)
    .map((g) =>
      g.kind === 'server'
        ? { object: `SERVER ${g.name}`, detail: `the new owner of foreign server ${g.name} needs USAGE on its foreign-data wrapper ${g.other ?? ''}`, fix: `GRANT USAGE ON FOREIGN DATA WRAPPER ${g.other ?? ''} TO ${heir}` }
        : g.kind === 'policy'
          ? {
              object: `POLICY ${g.name}`,
              detail: `policy ${g.name} names the role; DROP OWNED can take it out only with the privileges of the table's owner (run the fix as the owner or a superuser)`,
              fix: g.other ? `ALTER POLICY ${g.name} TO ${g.other}` : `DROP POLICY ${g.name}`,
            }
          : g.kind === 'publication'
          ? { object: `PUBLICATION ${g.name}`, detail: `the new owner of publication ${g.name} needs CREATE on the database`, fix: `GRANT CREATE ON DATABASE ${g.other ?? ''} TO ${heir}` }
          : { object: `PUBLICATION ${g.name}`, detail: `publication ${g.name} is FOR ALL TABLES: only a superuser may own it`, fix: null },
    );
}

/** Whether a role named `role` exists (pg_roles: every role, whatever pgwarden's privileges). */
export async function roleExists(db: Queryable, role: string): Promise<boolean> {
  const { rowCount } = await db.query('select 1 from pg_roles where rolname = $1', [role]);
  return (rowCount ?? 0) > 0;
}
