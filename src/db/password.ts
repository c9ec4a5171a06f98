/**
 * The server side of setting a password: the SCRAM iteration count the server uses, and keeping
 * the one statement that carries the verifier out of the server log (the verifier allows offline
 * guessing, so it is a secret too).
 */
import type { Queryable } from './pool.js';
import { DEFAULT_SCRAM_ITERATIONS } from './scram.js';

export interface PasswordSettings {
  /** `scram_iterations` (PostgreSQL 16+), else libpq's and the server's 4096. */
  readonly iterations: number;
  /** Whether pgwarden's user may silence the log for its transaction (superuser-only settings). */
  readonly superuser: boolean;
}

export async function fetchPasswordSettings(client: Queryable): Promise<PasswordSettings> {
  const { rows } = await client.query<{ iterations: string | null; su: boolean }>(
    `select current_setting('scram_iterations', true) as iterations,
            (select rolsuper from pg_roles where rolname = current_user) as su`,
  );
  return { iterations: Number(rows[0]?.iterations) || DEFAULT_SCRAM_ITERATIONS, superuser: rows[0]?.su === true };
}

/**
 * In an open transaction: no statement of it reaches the server log. Only a superuser may change
 * these settings; others rely on the server's own logging configuration.
 */
export async function silenceStatementLog(client: Queryable, settings: PasswordSettings): Promise<void> {
  if (!settings.superuser) return;
  await client.query("set local log_statement = 'none'");
  await client.query('set local log_min_duration_statement = -1');
  await client.query("set local log_min_error_statement = 'panic'");
  // pg_stat_statements keeps utility statements' text (track_utility is on by default).
  await client.query(
    "select set_config('pg_stat_statements.track_utility', 'off', true) where current_setting('pg_stat_statements.track_utility', true) is not null",
  );
}

/** Whether `role`'s stored password is a SCRAM verifier (readable by superusers only: null otherwise). */
export async function storedAsScram(client: Queryable, role: string, settings: PasswordSettings): Promise<boolean | null> {
  if (!settings.superuser) return null;
  const { rows } = await client.query<{ scram: boolean }>(`select rolpassword like 'SCRAM-SHA-256$%' as scram from pg_authid where rolname = $1`, [role]);
  return rows[0]?.scram === true;
}

/**
 * A role's password expiry as stored (`rolvaliduntil`): a finite instant, or null with `infinite`
 * telling "infinity" from no expiry at all. Null when the role does not exist.
 * https://www.postgresql.org/docs/current/view-pg-roles.html
 */
export async function fetchValidUntil(client: Queryable, role: string): Promise<{ validUntil: Date | null; infinite: boolean } | null> {
  const { rows } = await client.query<{ valid_until: Date | null; infinite: boolean }>(
    `select case when isfinite(rolvaliduntil) then rolvaliduntil end as valid_until,
            coalesce(rolvaliduntil = 'infinity', false) as infinite
     from pg_roles where rolname = $1`,
    [role],
  );
  const row = rows[0];
  return row ? { validUntil: row.valid_until, infinite: row.infinite } : null;
}
