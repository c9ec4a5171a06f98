/**
 * The statements that change a role: create it, log it in or out, set its password, expiry and
 * connection limit, give it a group or a schema, hand over and drop what it owns, drop it.
 * Utility statements take no bind parameters: identifiers go through quoteIdent, literals through
 * quoteLiteral, nothing else is spliced in.
 * https://www.postgresql.org/docs/current/sql-alterrole.html
 */
import { quoteIdent, quoteLiteral } from './quote.js';

/** What a password verifier is printed as: the secret is never shown. */
const REDACTED = "'***'";

/** `create role … login [valid until …] [connection limit …]`: the password comes last, on its own. */
export function createRoleSql(role: string, validUntil: string | null, connLimit: number | undefined): string {
  return (
    `create role ${quoteIdent(role)} login` +
    (validUntil !== null ? ` valid until ${quoteLiteral(validUntil)}` : '') +
    (connLimit !== undefined ? ` connection limit ${Math.trunc(connLimit)}` : '')
  );
}

export function nologinSql(role: string): string {
  return `alter role ${quoteIdent(role)} nologin`;
}

export function loginSql(role: string): string {
  return `alter role ${quoteIdent(role)} login`;
}

/**
 * `alter role … password '<verifier>' [valid until '…']`: the verifier is a secret, never logged.
 * With `verifier` null, the printable form with `'***'`.
 */
export function setPasswordSql(role: string, verifier: string | null, validUntil?: string): string {
  return (
    `alter role ${quoteIdent(role)} password ${verifier === null ? REDACTED : quoteLiteral(verifier)}` +
    (validUntil ? ` valid until ${quoteLiteral(validUntil)}` : '')
  );
}

/** `alter role … valid until '…'` (a timestamp, or 'infinity'). */
export function setValidUntilSql(role: string, validUntil: string): string {
  return `alter role ${quoteIdent(role)} valid until ${quoteLiteral(validUntil)}`;
}

/** `alter role … connection limit n` (-1: none). */
export function setConnectionLimitSql(role: string, limit: number): string {
  return `alter role ${quoteIdent(role)} connection limit ${Math.trunc(limit)}`;
}

/** `grant <group> to <role>`: membership, with the server's default options. */
export function grantRoleSql(group: string, role: string): string {
  return `grant ${quoteIdent(group)} to ${quoteIdent(role)}`;
}

/** `grant usage[, create] on schema … to …`. */
export function grantSchemaSql(schema: string, privileges: readonly string[], role: string): string {
  return `grant ${privileges.map((p) => p.toLowerCase()).join(', ')} on schema ${quoteIdent(schema)} to ${quoteIdent(role)}`;
}

/** `reassign owned by … to …`: in the database it runs in, and for the shared objects. */
export function reassignOwnedSql(role: string, newOwner: string): string {
  return `reassign owned by ${quoteIdent(role)} to ${quoteIdent(newOwner)}`;
}

/** `drop owned by …`: what is left of the role's in the database it runs in, privileges included. */
export function dropOwnedSql(role: string): string {
  return `drop owned by ${quoteIdent(role)}`;
}

export function dropRoleSql(role: string): string {
  return `drop role ${quoteIdent(role)}`;
}

/**
 * An offboard's statements for one database, in a transaction that is rolled back: the server
 * itself says what it would refuse, and nothing changes.
 */
export function trialOffboardSql(role: string, newOwner: string): string {
  return `begin; ${reassignOwnedSql(role, newOwner)}; ${dropOwnedSql(role)}; rollback`;
}
