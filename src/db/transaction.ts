/**
 * The one way pgwarden runs statements that change things: in a transaction whose timeouts are
 * local to it (SET LOCAL), so nothing is left set on a pooled session for its next user, rolled
 * back on any failure. A GRANT or REVOKE that changes nothing — the server only warns (SQLSTATE
 * 01006 "no privileges could be revoked", 01007 "no privileges were granted", and their "not all"
 * forms) — fails with NothingChangedError, so that it is never reported done.
 * https://www.postgresql.org/docs/current/sql-set.html (SET LOCAL)
 */
import type pg from 'pg';

/** Timeouts of one transaction, in milliseconds; absent: the session's own. */
export interface TransactionOptions {
  readonly lockTimeoutMs?: number;
  readonly statementTimeoutMs?: number;
}

const NOTHING_CHANGED = new Set(['01006', '01007']);

/** A statement that succeeded but changed nothing it was meant to (its warning as the message). */
export class NothingChangedError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(`${message}: pgwarden's role may only revoke or grant what it, or a role whose privileges it has, granted (see pgwarden doctor)`);
    this.name = 'NothingChangedError';
    this.code = code;
  }
}

/** Listens on `client` for the warning of a GRANT or REVOKE that changed nothing, until stopped. */
function watchNothingChanged(client: pg.ClientBase): { readonly seen: () => NothingChangedError | undefined; readonly stop: () => void } {
  let unchanged: NothingChangedError | undefined;
  const onNotice = (notice: { code?: string; message?: string }) => {
    if (notice.code !== undefined && NOTHING_CHANGED.has(notice.code)) unchanged ??= new NothingChangedError(notice.code, notice.message ?? 'nothing was changed');
  };
  client.on('notice', onNotice);
  return { seen: () => unchanged, stop: () => client.removeListener('notice', onNotice) };
}

function localSettings(options: TransactionOptions): string {
  const set = (name: string, ms: number | undefined) => (ms === undefined ? '' : `; set local ${name} = ${Math.max(1, Math.trunc(ms))}`);
  return `${set('lock_timeout', options.lockTimeoutMs)}${set('statement_timeout', options.statementTimeoutMs)}`;
}

/**
 * Runs `fn` in a transaction on `client` with `options`' timeouts local to it: commits when `fn`
 * resolves, rolls back when it throws (and rethrows). A GRANT or REVOKE in it that changed
 * nothing makes it fail (NothingChangedError) and roll back; `fn` may call `assertChanged()`
 * after a statement to fail right there.
 */
export async function withTransaction<T>(
  client: pg.ClientBase,
  options: TransactionOptions,
  fn: (client: pg.ClientBase, assertChanged: () => void) => Promise<T>,
): Promise<T> {
  const watch = watchNothingChanged(client);
  // For a caller that must know which statement changed nothing: throws as soon as one did.
  const assertChanged = () => {
    const unchanged = watch.seen();
    if (unchanged) throw unchanged;
  };
  try {
    await client.query(`begin${localSettings(options)}`);
    try {
      const result = await fn(client, assertChanged);
      assertChanged();
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    }
  } finally {
    watch.stop();
  }
}

/**
 * Runs one utility statement, or a block that opens and closes its own transaction (`BEGIN; SET
 * LOCAL ROLE …; REVOKE …; COMMIT`, or a trial ending in ROLLBACK), with `options`' timeouts local
 * to its transaction. Fails on a GRANT or REVOKE that changed nothing.
 */
export async function runStatement(client: pg.ClientBase, sql: string, options: TransactionOptions): Promise<void> {
  const block = /^\s*begin\s*;/i.exec(sql);
  if (!block) {
    await withTransaction(client, options, (c) => c.query(sql));
    return;
  }
  // The block's own transaction takes the local settings right after its BEGIN.
  const watch = watchNothingChanged(client);
  try {
    await client.query(`begin${localSettings(options)};${sql.slice(block[0].length)}`);
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    watch.stop();
  }
  const unchanged = watch.seen();
  if (unchanged) throw unchanged;
}
