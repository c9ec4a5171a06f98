/**
 * Statements printed for a person to run (as a superuser, or as the objects' owner): `doctor`'s
 * fixes and the fixes of offboard and revoke blockers. Never run by pgwarden. Upper case, as a DBA
 * writes them and the documentation shows them; identifiers quoted, literals escaped, as for the
 * statements pgwarden runs.
 * https://www.postgresql.org/docs/current/sql-grant.html, sql-alterrole.html, sql-alterdatabase.html
 */
import { quoteIdent, quoteLiteral } from './quote.js';

/** The predefined roles doctor asks for: printed bare, as the PostgreSQL documentation writes them. */
const PREDEFINED = new Set(['pg_read_all_stats', 'pg_signal_backend']);

/**
 * `GRANT <role> TO <member> [WITH <options>]`. `role` is written as is when it is one of the
 * predefined roles doctor asks for (`pg_signal_backend`), else quoted; `options` as the
 * server takes them (`ADMIN OPTION, INHERIT FALSE, SET FALSE`, `INHERIT TRUE`, …).
 */
export function grantRoleFix(role: string, member: string, options?: string): string {
  return `GRANT ${PREDEFINED.has(role) ? role : quoteIdent(role)} TO ${quoteIdent(member)}${options ? ` WITH ${options}` : ''}`;
}

/** `ALTER ROLE <role> <options>`, options as the server takes them (`CREATEROLE`, `LOGIN CONNECTION LIMIT 5`, …). */
export function alterRoleFix(role: string, options: readonly string[]): string {
  return `ALTER ROLE ${quoteIdent(role)} ${options.join(' ')}`;
}

/** The `VALID UNTIL '…'` option of an ALTER ROLE fix. */
export function validUntilOption(timestamp: string): string {
  return `VALID UNTIL ${quoteLiteral(timestamp)}`;
}

export function grantConnectFix(database: string, grantee: string): string {
  return `GRANT CONNECT ON DATABASE ${quoteIdent(database)} TO ${quoteIdent(grantee)}`;
}

export function allowConnectionsFix(database: string): string {
  return `ALTER DATABASE ${quoteIdent(database)} ALLOW_CONNECTIONS true`;
}

/** `ALTER <kind> <name> OWNER TO <owner>`; `name` is already qualified and quoted as the server wrote it. */
export function alterOwnerFix(kind: string, name: string, owner: string): string {
  return `ALTER ${kind} ${name} OWNER TO ${quoteIdent(owner)}`;
}

/** What ends a prepared transaction (no signal does): either statement, in its database. */
export function finishPreparedFix(gid: string, database: string): string {
  return `COMMIT PREPARED or ROLLBACK PREPARED ${quoteLiteral(gid)} in database ${quoteIdent(database)}`;
}
