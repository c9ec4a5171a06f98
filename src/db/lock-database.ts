/**
 * Who may connect to a database, and the statements that change it: REVOKE/GRANT CONNECT for one
 * grantee (PUBLIC included), or ALLOW_CONNECTIONS for everyone but a superuser.
 * https://www.postgresql.org/docs/current/sql-alterdatabase.html
 * https://www.postgresql.org/docs/current/ddl-priv.html (CONNECT)
 */
import type { Queryable } from './pool.js';
import { quoteIdent } from './quote.js';

function granteeSql(grantee: string): string {
  return grantee === 'PUBLIC' ? 'public' : quoteIdent(grantee);
}

export function revokeConnectSql(database: string, grantee: string): string {
  return `revoke connect on database ${quoteIdent(database)} from ${granteeSql(grantee)}`;
}

export function grantConnectSql(database: string, grantee: string): string {
  return `grant connect on database ${quoteIdent(database)} to ${granteeSql(grantee)}`;
}

/** `alter database … allow_connections true|false`: false keeps out every role but superusers. */
export function allowConnectionsSql(database: string, allow: boolean): string {
  return `alter database ${quoteIdent(database)} allow_connections ${allow}`;
}

/**
 * Who holds CONNECT on `database` by its ACL ('PUBLIC' for the public pseudo-role), its owner
 * left out; the default ACL (PUBLIC) when it has none. One statement.
 */
export async function fetchConnectGrantees(db: Queryable, database: string): Promise<string[]> {
  const { rows } = await db.query<{ grantee: string }>(
    `select distinct case when a.grantee = 0 then 'PUBLIC' else r.rolname::text end as grantee
     from pg_database d
     cross join aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
     left join pg_roles r on r.oid = a.grantee
     where d.datname = $1 and a.privilege_type = 'CONNECT' and a.grantee <> d.datdba
     order by 1`,
    [database],
  );
  return rows.map((r) => r.grantee);
}

/**
 * Whether `role` itself holds CONNECT on `database` in its ACL (not through PUBLIC or a group):
 * only then does the REVOKE's restore grant it back. One statement.
 */
export async function holdsExplicitConnect(db: Queryable, database: string, role: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `select 1 from pg_database d cross join aclexplode(d.datacl) a join pg_roles r on r.oid = a.grantee
     where d.datname = $1 and r.rolname = $2 and a.privilege_type = 'CONNECT'`,
    [database, role],
  );
  return (rowCount ?? 0) > 0;
}
