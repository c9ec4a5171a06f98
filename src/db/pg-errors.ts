/**
 * PostgreSQL errors are matched by SQLSTATE, never by message text
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html).
 */

export const SQLSTATE = {
  insufficientPrivilege: '42501',
  invalidCatalogName: '3D000', // database does not exist
  undefinedObject: '42704', // e.g. role does not exist
  invalidPassword: '28P01',
  invalidAuthorization: '28000',
  tooManyConnections: '53300',
  cannotConnectNow: '57P03',
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  adminShutdown: '57P01',
} as const;

/** Network-level failures reported by Node rather than by the server. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ENOENT', // unix socket path missing
]);

/** The SQLSTATE or Node error code of an error, if it has one. */
export function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  if (err instanceof AggregateError) return errorCode(err.errors[0]);
  return undefined;
}

/** The most useful one-line reason of an error (AggregateError from dual-stack connects has none). */
export function errorReason(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return [...new Set(err.errors.map(errorReason))].join('; ');
  }
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/** True when the error means "could not get a session", not "the statement failed". */
export function isConnectionFailure(err: unknown): boolean {
  const code = errorCode(err);
  if (code !== undefined) {
    if (NETWORK_CODES.has(code)) return true;
    if (code.startsWith('08') || code.startsWith('28')) return true;
    if (code === SQLSTATE.invalidCatalogName || code === SQLSTATE.tooManyConnections || code === SQLSTATE.cannotConnectNow) {
      return true;
    }
  }
  const message = err instanceof Error ? err.message : '';
  // pg's own wording for a connect timeout or a socket closed during the handshake.
  return /timeout expired|Connection terminated (unexpectedly|due to connection timeout)/i.test(message);
}

/**
 * The server's whole word on a failed statement: its message, then its DETAIL and HINT when it
 * gave them (where the real cause often is: "1 object in database d", "The owner of an event
 * trigger must be a superuser").
 */
export function serverMessage(err: unknown): string {
  const reason = errorReason(err);
  const extra = err && typeof err === 'object' ? (err as { detail?: unknown; hint?: unknown }) : {};
  const detail = typeof extra.detail === 'string' && extra.detail ? ` — DETAIL: ${extra.detail}` : '';
  const hint = typeof extra.hint === 'string' && extra.hint ? ` — HINT: ${extra.hint}` : '';
  return `${reason}${detail}${hint}`;
}
