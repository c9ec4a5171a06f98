/**
 * The privileges a role holds (and has handed on), read from the ACLs of one database and from
 * the shared catalogs, each as the GRANT that restores it and the REVOKE that removes it. Used to
 * write restore SQL to the audit log before `revoke_privileges` or `offboard` removes anything,
 * and by `revoke_privileges` to revoke one ACL item at a time: a superuser's plain REVOKE acts as
 * the owner and would leave other grantors' grants in place, so every REVOKE is made as its
 * grantor. PostgreSQL 14–18 accept only the current role in `GRANTED BY` for object privileges
 * (other grantors from 19), so the statement runs in a transaction under `SET LOCAL ROLE grantor`;
 * role memberships take `GRANTED BY` directly.
 */
import { forEachDatabase } from './databases.js';
import { quoteIdent } from './quote.js';
import { serverFacts } from './server.js';
import type { Queryable, TargetDb } from './pool.js';

/** One ACL item: privileges `grantor` gave `grantee` on one object. */
export interface Grant {
  /** The object as GRANT/REVOKE spell it: `TABLE "s"."t"`, `SCHEMA "s"`, `FUNCTION "s"."f"(integer)`. */
  readonly object: string;
  /** `SELECT`, `UPDATE ("col")`, … — or for a membership, the group's quoted name. */
  readonly privileges: readonly string[];
  readonly grantee: string;
  readonly grantor: string;
  readonly grantable: boolean;
  /** Database the grant lives in; null for shared objects (databases, parameters, memberships). */
  readonly database: string | null;
  /** Default privileges: the role and schema they apply for (`FOR ROLE … IN SCHEMA …`). */
  readonly defaults?: { readonly forRole: string; readonly schema: string | null; readonly objects: string };
  /** Role memberships (PostgreSQL 16+: per grantor, with INHERIT and SET). */
  readonly membership?: { readonly group: string; readonly admin: boolean; readonly inherit: boolean | null; readonly set: boolean | null };
}

const PRIV = `upper(a.privilege_type)`;

/**
 * Over a CTE `items` (object, privilege, grantee, grantor, is_grantable) and `r` (the role):
 * one row per ACL item the role holds or gave, its privileges gathered.
 */
const GRANTS_OF_ROLE = `
  select i.object, array_agg(i.privilege order by i.privilege) as privileges,
         case when i.grantee = 0 then 'PUBLIC' else ge.rolname::text end as grantee,
         gr.rolname::text as grantor, i.is_grantable as grantable
  from items i
  join pg_roles gr on gr.oid = i.grantor
  left join pg_roles ge on ge.oid = i.grantee
  cross join r
  where (i.grantee = r.oid or i.grantor = r.oid) and i.grantee <> i.grantor
  group by i.object, i.grantee, ge.rolname, gr.rolname, i.is_grantable
  order by 1, 3, 4`;

/**
 * ACL items of database-local objects where `role` is grantee or grantor. Rows carry quoted
 * object names built by the server's quote_ident.
 */
const LOCAL_GRANTS_SQL = `
  with r as (select oid, rolname from pg_roles where rolname = $1),
  items as (
    select case c.relkind when 'S' then 'SEQUENCE ' else 'TABLE ' end || quote_ident(n.nspname) || '.' || quote_ident(c.relname) as object,
           ${PRIV} as privilege, a.grantee, a.grantor, a.is_grantable
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    cross join aclexplode(c.relacl) a
    where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
    union all
    select 'TABLE ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
           ${PRIV} || ' (' || quote_ident(att.attname) || ')', a.grantee, a.grantor, a.is_grantable
    from pg_attribute att join pg_class c on c.oid = att.attrelid join pg_namespace n on n.oid = c.relnamespace
    cross join aclexplode(att.attacl) a
    where att.attacl is not null and not att.attisdropped
    union all
    select case p.prokind when 'p' then 'PROCEDURE ' else 'FUNCTION ' end || quote_ident(n.nspname) || '.' || quote_ident(p.proname)
             || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           ${PRIV}, a.grantee, a.grantor, a.is_grantable
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace cross join aclexplode(p.proacl) a
    union all
    select 'SCHEMA ' || quote_ident(n.nspname), ${PRIV}, a.grantee, a.grantor, a.is_grantable
    from pg_namespace n cross join aclexplode(n.nspacl) a
    union all
    select case t.typtype when 'd' then 'DOMAIN ' else 'TYPE ' end || quote_ident(n.nspname) || '.' || quote_ident(t.typname),
           ${PRIV}, a.grantee, a.grantor, a.is_grantable
    from pg_type t join pg_namespace n on n.oid = t.typnamespace cross join aclexplode(t.typacl) a
    union all
    select 'FOREIGN DATA WRAPPER ' || quote_ident(w.fdwname), ${PRIV}, a.grantee, a.grantor, a.is_grantable
    from pg_foreign_data_wrapper w cross join aclexplode(w.fdwacl) a
    union all
    select 'FOREIGN SERVER ' || quote_ident(s.srvname), ${PRIV}, a.grantee, a.grantor, a.is_grantable
    from pg_foreign_server s cross join aclexplode(s.srvacl) a
    union all
    select 'LANGUAGE ' || quote_ident(l.lanname), ${PRIV}, a.grantee, a.grantor, a.is_grantable
    from pg_language l cross join aclexplode(l.lanacl) a
    union all
    select 'LARGE OBJECT ' || m.oid::text, ${PRIV}, a.grantee, a.grantor, a.is_grantable
    from pg_largeobject_metadata m cross join aclexplode(m.lomacl) a
  )
${GRANTS_OF_ROLE}`;

/** Default privileges (ALTER DEFAULT PRIVILEGES) that grant to `role`, in this database. */
const DEFAULT_GRANTS_SQL = `
  select fr.rolname::text as for_role, n.nspname::text as schema,
         case d.defaclobjtype when 'r' then 'TABLES' when 'S' then 'SEQUENCES' when 'f' then 'FUNCTIONS'
                              when 'T' then 'TYPES' when 'n' then 'SCHEMAS' when 'L' then 'LARGE OBJECTS' end as objects,
         array_agg(upper(a.privilege_type) order by a.privilege_type) as privileges,
         case when a.grantee = 0 then 'PUBLIC' else ge.rolname::text end as grantee,
         gr.rolname::text as grantor, a.is_grantable as grantable
  from pg_default_acl d
  join pg_roles fr on fr.oid = d.defaclrole
  left join pg_namespace n on n.oid = d.defaclnamespace
  cross join aclexplode(d.defaclacl) a
  join pg_roles gr on gr.oid = a.grantor
  left join pg_roles ge on ge.oid = a.grantee
  -- granted to the role, or defined for it (DROP OWNED removes those too)
  where ge.rolname = $1 or fr.rolname = $1
  group by fr.rolname, n.nspname, d.defaclobjtype, a.grantee, ge.rolname, gr.rolname, a.is_grantable
  order by 1, 2, 3`;

/** Shared objects: databases and (15+) parameters. */
function sharedGrantsSql(serverVersionNum: number): string {
  const parameters =
    serverVersionNum >= 150000
      ? `union all
    select 'PARAMETER ' || p.parname, ${PRIV}, a.grantee, a.grantor, a.is_grantable
    from pg_parameter_acl p cross join aclexplode(p.paracl) a`
      : '';
  return `
  with r as (select oid from pg_roles where rolname = $1),
  items as (
    select 'DATABASE ' || quote_ident(d.datname) as object, ${PRIV} as privilege, a.grantee, a.grantor, a.is_grantable
    from pg_database d cross join aclexplode(d.datacl) a
    ${parameters}
  )
${GRANTS_OF_ROLE}`;
}

/** Memberships of `role` in other roles; PostgreSQL 16+ has one row per grantor with INHERIT and SET. */
function membershipsSql(serverVersionNum: number): string {
  const options = serverVersionNum >= 160000 ? 'm.inherit_option as inherit, m.set_option as set' : 'null::bool as inherit, null::bool as set';
  return `
  select g.rolname::text as "group", gr.rolname::text as grantor, m.admin_option as admin, ${options}
  from pg_auth_members m
  join pg_roles g on g.oid = m.roleid
  join pg_roles me on me.oid = m.member
  left join pg_roles gr on gr.oid = m.grantor
  where me.rolname = $1
  order by 1, 2`;
}

interface AclRow {
  object: string;
  privileges: string[];
  grantee: string;
  grantor: string;
  grantable: boolean;
}

const toGrant = (database: string | null) => (r: AclRow): Grant => ({ ...r, database });

/** Grants held by or handed on by `role` on objects of the database `client` is connected to. */
export async function fetchLocalGrants(client: Queryable, database: string, role: string): Promise<Grant[]> {
  // One after the other: one connection runs one query at a time anyway, and pg queues a second
  // query only with a deprecation warning (pg 9 will refuse it).
  const acl = await client.query<AclRow>(LOCAL_GRANTS_SQL, [role]);
  const defaults = await client.query<{ for_role: string; schema: string | null; objects: string; privileges: string[]; grantee: string; grantor: string; grantable: boolean }>(
    DEFAULT_GRANTS_SQL,
    [role],
  );
  return [
    ...acl.rows.map(toGrant(database)),
    ...defaults.rows.map((d) => ({
      object: d.objects,
      privileges: d.privileges,
      grantee: d.grantee,
      grantor: d.grantor,
      grantable: d.grantable,
      database,
      defaults: { forRole: d.for_role, schema: d.schema, objects: d.objects },
    })),
  ];
}

/** Shared grants: on databases, parameters (15+), and memberships in other roles. */
export async function fetchSharedGrants(client: Queryable, role: string): Promise<Grant[]> {
  const serverVersionNum = (await serverFacts(client)).versionNum;
  const acl = await client.query<AclRow>(sharedGrantsSql(serverVersionNum), [role]);
  const members = await client.query<{ group: string; grantor: string | null; admin: boolean; inherit: boolean | null; set: boolean | null }>(
    membershipsSql(serverVersionNum),
    [role],
  );
  return [
    ...acl.rows.map(toGrant(null)),
    ...members.rows.map((m) => ({
      object: 'ROLE',
      privileges: [quoteIdent(m.group)],
      grantee: role,
      grantor: m.grantor ?? '',
      grantable: m.admin,
      database: null,
      membership: { group: m.group, admin: m.admin, inherit: m.inherit, set: m.set },
    })),
  ];
}

const who = (name: string) => (name === 'PUBLIC' ? 'PUBLIC' : quoteIdent(name));
const grantedBy = (grantor: string) => (grantor ? ` GRANTED BY ${quoteIdent(grantor)}` : '');

/** One transaction acting as `grantor`: runnable as printed, in psql or as one simple query. */
function asGrantor(grantor: string, statement: string): string {
  return grantor ? `BEGIN; SET LOCAL ROLE ${quoteIdent(grantor)}; ${statement}; COMMIT` : statement;
}

/** The GRANT that restores `grant` exactly: grantor, grant option, membership options. */
export function restoreSql(grant: Grant): string {
  if (grant.membership) {
    const m = grant.membership;
    const opts = [m.admin ? 'ADMIN OPTION' : null, m.inherit === null ? null : `INHERIT ${m.inherit}`, m.set === null ? null : `SET ${m.set}`].filter(Boolean);
    return `GRANT ${quoteIdent(m.group)} TO ${quoteIdent(grant.grantee)}${opts.length ? ` WITH ${opts.join(', ')}` : ''}${grantedBy(grant.grantor)}`;
  }
  if (grant.defaults) {
    const d = grant.defaults;
    return (
      `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(d.forRole)}${d.schema ? ` IN SCHEMA ${quoteIdent(d.schema)}` : ''} ` +
      `GRANT ${grant.privileges.join(', ')} ON ${d.objects} TO ${who(grant.grantee)}${grant.grantable ? ' WITH GRANT OPTION' : ''}`
    );
  }
  return asGrantor(grant.grantor, `GRANT ${grant.privileges.join(', ')} ON ${grant.object} TO ${who(grant.grantee)}${grant.grantable ? ' WITH GRANT OPTION' : ''}`);
}

/** The REVOKE that removes exactly this ACL item (CASCADE: grants the grantee handed on go too). */
export function revokeSql(grant: Grant): string {
  if (grant.membership) return `REVOKE ${quoteIdent(grant.membership.group)} FROM ${quoteIdent(grant.grantee)}${grantedBy(grant.grantor)} CASCADE`;
  if (grant.defaults) {
    const d = grant.defaults;
    return (
      `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(d.forRole)}${d.schema ? ` IN SCHEMA ${quoteIdent(d.schema)}` : ''} ` +
      `REVOKE ${grant.privileges.join(', ')} ON ${d.objects} FROM ${who(grant.grantee)} CASCADE`
    );
  }
  return asGrantor(grant.grantor, `REVOKE ${grant.privileges.join(', ')} ON ${grant.object} FROM ${who(grant.grantee)} CASCADE`);
}

/**
 * Every grant each of `roles` holds or handed on, across every database (one connection per
 * database, opened and closed in turn) plus the shared catalogs. Databases that could not be
 * entered are returned in `skipped`: their grants are unknown, never silently left out.
 */
export async function fetchRoleGrants(
  db: TargetDb,
  roles: readonly string[],
): Promise<{ grants: Map<string, Grant[]>; skipped: { database: string; reason: string }[] }> {
  const grants = new Map<string, Grant[]>(roles.map((r) => [r, []]));
  if (roles.length === 0) return { grants, skipped: [] };
  for (const role of roles) grants.get(role)?.push(...(await fetchSharedGrants(db, role)));
  const visit = await forEachDatabase(db, async (client, database) => {
    for (const role of roles) grants.get(role)?.push(...(await fetchLocalGrants(client, database, role)));
  });
  return { grants, skipped: visit.skipped };
}
