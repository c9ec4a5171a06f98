/**
 * Locking a database before ending its sessions (`logout --database DB --lock`): REVOKE CONNECT
 * from PUBLIC and from every grantee, or with `--lock=all` ALLOW_CONNECTIONS false. Each action
 * carries the SQL that undoes it.
 */
import { allowConnectionsSql, grantConnectSql, revokeConnectSql } from '../db/lock-database.js';
import type { RoleActionPlan } from './role-actions.js';

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
        sql: allowConnectionsSql(database, false),
        restore: allowConnectionsSql(database, true),
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
