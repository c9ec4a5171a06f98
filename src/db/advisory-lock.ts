/**
 * The leader lock's statements: a session-level advisory lock, tried (never waited for: a waiter
 * would show as a lock waiter to every policy), and a ping of the session that holds it.
 * https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS
 */
import type { Queryable } from './pool.js';

/** pg_try_advisory_lock on `key` (a signed 64-bit integer as text): true when this session holds it now. */
export async function tryAdvisoryLock(session: Queryable, key: string): Promise<boolean> {
  const { rows } = await session.query<{ locked: boolean }>('select pg_try_advisory_lock($1::bigint) as locked', [key]);
  return rows[0]?.locked === true;
}

/** One round trip on the session: it still answers (and so still holds its session-level locks). */
export async function pingSession(session: Queryable): Promise<void> {
  await session.query('select 1');
}
