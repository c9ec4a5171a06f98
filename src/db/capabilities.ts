/**
 * What pgwarden's role is and may do on a target, for `pgwarden doctor` and the daemon's start-up
 * report: one round trip that reads its attributes and memberships, the databases and whether it
 * may enter each and act as each one's owner, on PostgreSQL 16+ the login roles it lacks ADMIN
 * OPTION on, and who granted the privileges a revoke would have to remove.
 *
 * Privileges are asked of the server as it decides them: "has the privileges of" is
 * pg_has_role(…, 'USAGE') (inheritance counts, plain membership does not), ADMIN OPTION is
 * pg_has_role(…, 'MEMBER WITH ADMIN OPTION') (any membership chain, as is_admin_of_role walks it).
 * Only catalogs every LOGIN role may read are used (pg_roles, not pg_authid), so this works as a
 * bare role on 14–18. Nothing from the user is spliced into the text; there is nothing to bind.
 */
import type { Queryable } from './pool.js';

/** `rolvaliduntil`: epoch seconds, or the two infinities, or null (none). */
export type ValidUntil = number | 'infinity' | '-infinity' | null;

/** A role's attributes as pg_roles shows them. */
export interface RoleAttributes {
  readonly name: string;
  readonly superuser: boolean;
  readonly createRole: boolean;
  readonly inherit: boolean;
  readonly canLogin: boolean;
  /** -1: no limit. */
  readonly connectionLimit: number;
  readonly validUntil: ValidUntil;
}

/** One database of the server, as pgwarden's current role sees it. */
export interface DatabaseFacts {
  readonly name: string;
  readonly allowConnections: boolean;
  readonly isTemplate: boolean;
  readonly owner: string;
  readonly ownerSuperuser: boolean;
  /** has_database_privilege(…, 'CONNECT'): may enter it (superusers always may). */
  readonly canConnect: boolean;
  /** Has the privileges of the owner: a REVOKE CONNECT there is made as the owner. */
  readonly ownerPrivileges: boolean;
}

/**
 * One (grantor, grantee) pair of the ACL entries in the connection database's catalogs and the
 * shared ones, PUBLIC and an owner's entries for itself left out, and grants made by pgwarden's
 * own role too (it can always revoke those).
 */
export interface GrantPair {
  readonly grantor: string;
  readonly grantorSuperuser: boolean;
  /** Has the privileges of the grantor: a REVOKE can be made as it. */
  readonly grantorPrivileges: boolean;
  readonly grantee: string;
  readonly granteeSuperuser: boolean;
  /** How many ACL entries (privilege types on objects) the pair stands for. */
  readonly entries: number;
}

/** Everything `doctor` judges for one target, read at one instant. */
export interface CapabilityFacts {
  /** session_user: the role pgwarden logged in as. */
  readonly sessionRole: RoleAttributes;
  /** current_user: the role whose privileges are checked (differs only after SET ROLE). */
  readonly currentRole: RoleAttributes;
  /** Roles the current role is a direct member of, whatever the grant's options. */
  readonly memberOf: readonly string[];
  /**
   * Of those, the ones held only to administer them (PostgreSQL 16+: every grant of the
   * membership has neither INHERIT nor SET, as CREATEROLE's grant on the roles it creates):
   * membership without any of the role's privileges. Empty before 16.
   */
  readonly adminOnlyMemberOf: readonly string[];
  /** The bootstrap superuser (oid 10). */
  readonly bootstrapRole: string;
  /** The connection database. */
  readonly database: string;
  /** server_version as the server reports it (e.g. `15.20 (Debian 15.20-0+deb12u1)`). */
  readonly serverVersion: string;
  readonly serverVersionNum: number;
  /** The server's clock, epoch seconds. */
  readonly now: number;
  /** Has the privileges of pg_read_all_stats (superusers do). */
  readonly readAllStats: boolean;
  /** Has the privileges of pg_signal_backend (superusers do). */
  readonly signalBackend: boolean;
  readonly databases: readonly DatabaseFacts[];
  /** Superuser LOGIN roles, other than the bootstrap superuser and pgwarden's own, by name. */
  readonly superuserLogins: readonly string[];
  /**
   * PostgreSQL 16+ and a non-superuser pgwarden: the non-superuser LOGIN roles it has no ADMIN
   * OPTION on (CREATEROLE may alter only those it has), pg_* roles, the bootstrap superuser and
   * its own role left out; by name. Empty otherwise.
   */
  readonly withoutAdminOption: readonly string[];
  readonly grants: readonly GrantPair[];
}

/** pg_roles columns of one role as a json object; `r` is the pg_roles alias. */
const ATTRIBUTES_JSON = `json_build_object(
    'name', r.rolname::text, 'superuser', r.rolsuper, 'createRole', r.rolcreaterole, 'inherit', r.rolinherit,
    'canLogin', r.rolcanlogin, 'connectionLimit', r.rolconnlimit,
    'validUntil', case when r.rolvaliduntil is null then null
                       when isfinite(r.rolvaliduntil) then to_json(extract(epoch from r.rolvaliduntil)::float8)
                       else to_json(r.rolvaliduntil::text) end)`;

/**
 * Every ACL of the connection database's catalogs that a REVOKE of a role's privileges can meet
 * (relations and their columns, schemas, functions, types, languages, large objects, foreign
 * data wrappers and servers, default privileges) and of the shared ones (databases, tablespaces).
 */
const ACL_SOURCES = [
  'select relacl as acl from pg_class where relacl is not null',
  'select attacl from pg_attribute where attacl is not null',
  'select nspacl from pg_namespace where nspacl is not null',
  'select proacl from pg_proc where proacl is not null',
  'select typacl from pg_type where typacl is not null',
  'select lanacl from pg_language where lanacl is not null',
  'select lomacl from pg_largeobject_metadata where lomacl is not null',
  'select fdwacl from pg_foreign_data_wrapper where fdwacl is not null',
  'select srvacl from pg_foreign_server where srvacl is not null',
  'select defaclacl from pg_default_acl',
  'select datacl from pg_database where datacl is not null',
  'select spcacl from pg_tablespace where spcacl is not null',
].join('\n      union all ');

/** The one statement: a single row of scalars and json arrays. */
export const CAPABILITIES_SQL = `
  with me as (select r.oid, r.rolsuper from pg_roles r where r.rolname = current_user),
       v as (select current_setting('server_version_num')::int as num),
       acl as (
         select a.grantor, a.grantee, count(*) as entries
         from (${ACL_SOURCES}) s
         cross join aclexplode(s.acl) a
         where a.grantee <> 0 and a.grantee <> a.grantor
         group by a.grantor, a.grantee)
  select session_user::text as session_role,
         current_user::text as current_role,
         current_database()::text as database,
         current_setting('server_version') as server_version,
         v.num as server_version_num,
         extract(epoch from clock_timestamp())::float8 as now,
         (select ${ATTRIBUTES_JSON} from pg_roles r where r.rolname = session_user) as session_attributes,
         (select ${ATTRIBUTES_JSON} from pg_roles r where r.rolname = current_user) as current_attributes,
         array(select distinct g.rolname::text from pg_auth_members m join pg_roles g on g.oid = m.roleid
               where m.member = me.oid order by 1) as member_of,
         -- inherit_option and set_option exist from 16 on: read through to_jsonb so one text serves 14–18
         array(select g.rolname::text from pg_auth_members m join pg_roles g on g.oid = m.roleid
               where m.member = me.oid group by g.rolname
               having not bool_or(coalesce((to_jsonb(m) ->> 'inherit_option')::boolean, true)
                                  or coalesce((to_jsonb(m) ->> 'set_option')::boolean, true))
               order by 1) as admin_only_member_of,
         (select rolname::text from pg_roles where oid = 10) as bootstrap_role,
         pg_has_role('pg_read_all_stats', 'USAGE') as read_all_stats,
         pg_has_role('pg_signal_backend', 'USAGE') as signal_backend,
         (select coalesce(json_agg(json_build_object(
                    'name', d.datname::text, 'allowConnections', d.datallowconn, 'isTemplate', d.datistemplate,
                    'owner', o.rolname::text, 'ownerSuperuser', o.rolsuper,
                    'canConnect', has_database_privilege(d.oid, 'CONNECT'),
                    'ownerPrivileges', pg_has_role(d.datdba, 'USAGE')) order by d.datname), '[]')
          from pg_database d join pg_roles o on o.oid = d.datdba) as databases,
         array(select r.rolname::text from pg_roles r
               where r.rolcanlogin and r.rolsuper and r.oid <> 10 and r.oid <> me.oid
               order by 1) as superuser_logins,
         array(select r.rolname::text from pg_roles r
               where v.num >= 160000 and not me.rolsuper
                 and r.rolcanlogin and not r.rolsuper and r.oid <> 10 and r.oid <> me.oid
                 and r.rolname !~ '^pg_'
                 and not pg_has_role(r.oid, 'MEMBER WITH ADMIN OPTION')
               order by 1) as without_admin_option,
         (select coalesce(json_agg(json_build_object(
                    'grantor', g.rolname::text, 'grantorSuperuser', g.rolsuper,
                    'grantorPrivileges', pg_has_role(g.oid, 'USAGE'),
                    'grantee', e.rolname::text, 'granteeSuperuser', e.rolsuper,
                    'entries', acl.entries) order by g.rolname, e.rolname), '[]')
          from acl join pg_roles g on g.oid = acl.grantor join pg_roles e on e.oid = acl.grantee
          where acl.grantor <> me.oid) as grants
  from me cross join v`;

interface CapabilitiesRow {
  session_role: string;
  current_role: string;
  database: string;
  server_version: string;
  server_version_num: number;
  now: number;
  session_attributes: RoleAttributes;
  current_attributes: RoleAttributes;
  member_of: string[];
  admin_only_member_of: string[];
  bootstrap_role: string;
  read_all_stats: boolean;
  signal_backend: boolean;
  databases: DatabaseFacts[];
  superuser_logins: string[];
  without_admin_option: string[];
  grants: (Omit<GrantPair, 'entries'> & { entries: number | string })[];
}

/** Reads the capability facts of the role `db` connects as: one statement, one round trip. */
export async function fetchCapabilities(db: Queryable): Promise<CapabilityFacts> {
  const { rows } = await db.query<CapabilitiesRow>(CAPABILITIES_SQL);
  const row = rows[0];
  if (!row) throw new Error('the capability query returned no row: the current role is not in pg_roles');
  return {
    sessionRole: row.session_attributes,
    currentRole: row.current_attributes,
    memberOf: row.member_of,
    adminOnlyMemberOf: row.admin_only_member_of,
    bootstrapRole: row.bootstrap_role,
    database: row.database,
    serverVersion: row.server_version,
    serverVersionNum: Number(row.server_version_num),
    now: Number(row.now),
    readAllStats: row.read_all_stats,
    signalBackend: row.signal_backend,
    databases: row.databases,
    superuserLogins: row.superuser_logins,
    withoutAdminOption: row.without_admin_option,
    // count(*) is int8: json carries it as a number already, but be explicit.
    grants: row.grants.map((g) => ({ ...g, entries: Number(g.entries) })),
  };
}
