/**
 * Leader election per target: a session-level advisory lock, taken by polling
 * pg_try_advisory_lock (never a blocking wait: every follower would show as a lock waiter), on a
 * dedicated connection with TCP keepalives (the OS default of 2 h would keep a dead leader's lock).
 * The leader checks on every poll that its connection still answers; when it does not, it steps
 * down at once and a follower takes over on its next poll (the server releases the lock when the
 * session ends).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import { pingSession, tryAdvisoryLock } from './db/advisory-lock.js';
import type { TargetDb } from './db/pool.js';
import { errorReason } from './db/pg-errors.js';

/** The advisory lock key: a number as given, or text hashed to a signed 64-bit integer (as text). */
export function leaderLockKey(key: string): string {
  if (/^-?\d+$/.test(key)) return key;
  return createHash('sha256').update(key).digest().readBigInt64BE(0).toString();
}

export class LeaderLock {
  readonly #db: TargetDb;
  readonly #key: string;
  readonly #log: Logger;
  #client: pg.Client | undefined;
  #leader = false;
  #closed = false;
  readonly #onChange: (leader: boolean) => void;

  constructor(db: TargetDb, lockKey: string, log: Logger, onChange: (leader: boolean) => void = () => undefined) {
    this.#db = db;
    this.#key = leaderLockKey(lockKey);
    this.#log = log;
    this.#onChange = onChange;
  }

  #set(leader: boolean): void {
    if (leader === this.#leader) return;
    this.#leader = leader;
    this.#log.info({ leader }, leader ? 'took the lead: this replica acts here (policies in enforce mode)' : 'not the leader: another replica acts here; this one plans and exports only');
    this.#onChange(leader);
  }

  async #connect(): Promise<pg.Client> {
    // In the target's own connection database, with keepalives, and known as one of our pids.
    const client = await this.#db.connectTo(this.#db.where.database);
    // A late event from an old connection must not end the current one.
    client.on('error', (err) => {
      if (this.#client !== client) return;
      this.#log.warn({ err }, 'leader lock connection failed');
      this.#drop();
    });
    client.on('end', () => {
      if (this.#client === client) this.#drop();
    });
    return client;
  }

  #drop(): void {
    const client = this.#client;
    this.#client = undefined;
    this.#set(false);
    client?.end().catch(() => undefined);
  }

  /**
   * One poll: a follower tries to take the lock, the leader checks it still holds it. A poll that
   * gets no answer within `timeoutMs` counts as a lost connection (a dead peer never answers).
   * Never throws.
   */
  async poll(timeoutMs = 10_000): Promise<boolean> {
    if (this.#closed) return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.#check(), timeout]);
    } catch (err) {
      this.#log.warn({ reason: errorReason(err) }, 'leader lock poll failed; not leading until it succeeds');
      this.#drop();
    } finally {
      clearTimeout(timer);
    }
    return this.#leader;
  }

  async #check(): Promise<void> {
    if (!this.#client) {
      const client = await this.#connect();
      // Closed meanwhile, or another poll connected first: this one must not linger holding a session.
      if (this.#closed || this.#client) {
        await client.end().catch(() => undefined);
        return;
      }
      this.#client = client;
    }
    const client = this.#client;
    if (this.#leader) {
      // The lock lives as long as this session: if the session answers, we still hold it.
      await pingSession(client);
    } else {
      const locked = await tryAdvisoryLock(client, this.#key);
      // Only if this is still our session (a timed-out poll may have dropped it meanwhile).
      if (this.#client === client) this.#set(locked);
      else await client.end().catch(() => undefined);
    }
  }

  /** Releases the lock (by ending the session) and stops; safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    this.#set(false);
    await client?.end().catch(() => undefined);
  }
}
