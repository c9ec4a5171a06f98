/**
 * Role statements. Utility statements take no bind parameters: identifiers go through quoteIdent,
 * literals through quoteLiteral, nothing else is spliced in.
 */
import { quoteIdent, quoteLiteral } from '../db/quote.js';

export function nologinSql(role: string): string {
  return `alter role ${quoteIdent(role)} nologin`;
}

export function loginSql(role: string): string {
  return `alter role ${quoteIdent(role)} login`;
}

export function revokeConnectSql(database: string, grantee: string): string {
  return `revoke connect on database ${quoteIdent(database)} from ${grantee === 'PUBLIC' ? 'public' : quoteIdent(grantee)}`;
}

export function grantConnectSql(database: string, grantee: string): string {
  return `grant connect on database ${quoteIdent(database)} to ${grantee === 'PUBLIC' ? 'public' : quoteIdent(grantee)}`;
}

/** `alter role … password '<verifier>' [valid until '…']`: the verifier is a secret, never logged. */
export function setPasswordSql(role: string, verifier: string, validUntil?: string): string {
  return `alter role ${quoteIdent(role)} password ${quoteLiteral(verifier)}${validUntil ? ` valid until ${quoteLiteral(validUntil)}` : ''}`;
}

/** The kill of every session of one backend identity, for a role: re-checked by pid and backend_start. */
export const TERMINATE_RECHECK = { states: null, since: 'backend_start', thresholdSeconds: 0 } as const;
