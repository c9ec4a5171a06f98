/**
 * The few error classes pgwarden throws. Each carries the exit code the CLI maps it to
 * (DESIGN.md: 2 bad usage or configuration, 1 runtime failure) so `main` needs no table.
 */

/** Bad configuration: names the offending key. Exit 2, before anything connects. */
export class ConfigError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Bad command-line usage or an argument that names nothing (unknown role, database). Exit 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Where a connection was going; never the password. */
export interface ConnectionTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
}

/** The server could not be reached or refused us. Exit 1. */
export class ConnectionError extends Error {
  readonly exitCode = 1;
  readonly target: ConnectionTarget;
  readonly code: string | undefined;
  constructor(target: ConnectionTarget, reason: string, code?: string) {
    super(
      `cannot connect to PostgreSQL at ${target.host}:${target.port} as user "${target.user}" (database "${target.database}"): ${reason}`,
    );
    this.name = 'ConnectionError';
    this.target = target;
    this.code = code;
  }
}

/** Turns anything thrown into an Error, so callers can log `{ err }` uniformly. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : JSON.stringify(thrown));
}

/** The exit code an error maps to: its own, or 1 for anything unexpected. */
export function exitCodeOf(err: unknown): number {
  if (err && typeof err === 'object' && 'exitCode' in err && typeof err.exitCode === 'number') {
    return err.exitCode;
  }
  return 1;
}
