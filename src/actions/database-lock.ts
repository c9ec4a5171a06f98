/**
 * Locking a database before ending its sessions (`logout --database DB --lock`): REVOKE CONNECT
 * from PUBLIC and from every grantee, or with `--lock=all` ALLOW_CONNECTIONS false. Each action
 * carries the SQL that undoes it.
 */
import type { Queryable } from '../db/pool.js';
import { quoteIdent } from '../db/quote.js';
import type { RoleActionPlan } from './role-actions.js';
import { grantConnectSql, revokeConnectSql } from './role-sql.js';

/** Who holds CONNECT on `database` by its ACL ('PUBLIC' for the public pseudo-role). */
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

/** The lock actions for `database`: one REVOKE per grantee, or one ALLOW_CONNECTIONS false. */
export function lockDatabasePlans(target: string, database: string, grantees: readonly string[], all: boolean): RoleActionPlan[] {
  if (all) {
    return [
      {
        target,
        policy: 'logout',
        action: 'lock_database',
        role: '',
        database,
        sql: `alter database ${quoteIdent(database)} allow_connections false`,
        restore: `alter database ${quoteIdent(database)} allow_connections true`,
        result: 'planned',
      },
    ];
  }
  return grantees.map((grantee) => ({
    target,
    policy: 'logout',
    action: 'revoke_connect' as const,
    role: grantee,
    database,
    sql: revokeConnectSql(database, grantee),
    restore: grantConnectSql(database, grantee),
    result: 'planned' as const,
  }));
}
