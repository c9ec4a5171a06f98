/**
 * The one quoting function for identifiers and the one literal helper for utility statements
 * (ALTER ROLE, REVOKE, ... take no bind parameters). Everything else binds values as $n.
 * Both are pg's own implementations (the same as `client.escapeIdentifier`), re-exported so
 * that every caller goes through this file and the hostile-input tests cover what runs.
 */
import pg from 'pg';

/** `"name"` with inner double quotes doubled: safe for any role, database or schema name. */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error('an identifier cannot contain a NUL character');
  return pg.escapeIdentifier(name);
}

/** `'text'` (or `E'...'` when it holds backslashes) for a literal in a utility statement. */
export function quoteLiteral(text: string): string {
  if (text.includes('\0')) throw new Error('a literal cannot contain a NUL character');
  return pg.escapeLiteral(text);
}
