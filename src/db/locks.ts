/**
 * Lock waits: for the sessions the snapshot shows waiting on a lock (wait_event_type = 'Lock'),
 * their blockers (pg_blocking_pids) and when each wait began (pg_locks.waitstart, 14+), plus the
 * prepared transactions (pg_blocking_pids reports one as pid 0). One statement, asked only when
 * a policy or command needs it; with nobody waiting only the tiny pg_prepared_xacts is read.
 */
import type { Queryable } from './pool.js';
import type { Session } from './snapshot.js';

export interface LockWait {
  readonly pid: number;
  readonly blockedBy: readonly number[];
  /** Seconds since the wait began (pg_locks.waitstart), by the session snapshot's clock. */
  readonly waitSeconds: number | null;
  /**
   * When a prepared transaction blocks it (pid 0 among blockedBy): the gids of those that hold a
   * conflicting lock on what it waits for (pg_blocking_pids names them all 0).
   */
  readonly preparedGids?: readonly string[];
}

export interface PreparedXact {
  readonly gid: string;
  readonly database: string;
  readonly owner: string;
  /** Seconds since PREPARE TRANSACTION, by the session snapshot's clock. */
  readonly ageSeconds: number;
}

export interface LockSnapshot {
  readonly waits: ReadonlyMap<number, LockWait>;
  readonly prepared: readonly PreparedXact[];
}

/*
 * pg_locks is a function (pg_lock_status) that copies the whole lock table on every call: read
 * once (the materialized `l`) for every waiter and every prepared transaction, not once per
 * waiter (a correlated subquery made it 50 copies for 50 waiters), and not at all when nobody
 * waits (the one-time filter on the waiter list).
 *
 * A prepared transaction's locks have no pid; they keep the virtual transaction id of the backend
 * that prepared it, and one of them is the exclusive lock on its own transaction id, which is how
 * its gid is found (https://www.postgresql.org/docs/current/view-pg-locks.html). A waiter blocked
 * by "pid 0" is matched to the prepared transactions that hold a conflicting lock on the very
 * object it waits for (the conflict table of "Table-Level Lock Modes", explicit-locking.html).
 *
 * Ages are by the clock of the session snapshot ($2, epoch µs), so that a waiter never appears
 * to have waited longer than its transaction has been open.
 */
export const LOCKS_SQL = `
  with l as materialized (
         select * from pg_locks where cardinality($1::int[]) > 0
       ),
       conflicts(mode, conflicting) as (values
         ('AccessShareLock', '{AccessExclusiveLock}'::text[]),
         ('RowShareLock', '{ExclusiveLock,AccessExclusiveLock}'),
         ('RowExclusiveLock', '{ShareLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}'),
         ('ShareUpdateExclusiveLock', '{ShareUpdateExclusiveLock,ShareLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}'),
         ('ShareLock', '{RowExclusiveLock,ShareUpdateExclusiveLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}'),
         ('ShareRowExclusiveLock', '{RowExclusiveLock,ShareUpdateExclusiveLock,ShareLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}'),
         ('ExclusiveLock', '{RowShareLock,RowExclusiveLock,ShareUpdateExclusiveLock,ShareLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}'),
         ('AccessExclusiveLock', '{AccessShareLock,RowShareLock,RowExclusiveLock,ShareUpdateExclusiveLock,ShareLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}')
       ),
       held_by_prepared as (
         select x.gid, h.virtualtransaction
         from l h join pg_prepared_xacts x on h.locktype = 'transactionid' and h.transactionid = x.transaction
         where h.pid is null
       ),
       waits as (
         select w.pid, pg_blocking_pids(w.pid) as blocked_by
         from unnest($1::int[]) as w(pid)
       )
  select 'wait' as kind, w.pid, w.blocked_by,
         ($2::int8 - (extract(epoch from s.waitstart) * 1000000)::int8) / 1e6::float8 as seconds,
         null::text as gid, null::text as database, null::text as owner,
         g.gids
  from waits w
  left join (
    select pid, min(waitstart) as waitstart from l where not granted group by pid
  ) s on s.pid = w.pid
  left join lateral (
    select array_agg(distinct p.gid::text order by p.gid::text) as gids
    from l wl
    join l hl on hl.pid is null and hl.granted
             and hl.locktype = wl.locktype
             and hl.database is not distinct from wl.database and hl.relation is not distinct from wl.relation
             and hl.page is not distinct from wl.page and hl.tuple is not distinct from wl.tuple
             and hl.virtualxid is not distinct from wl.virtualxid and hl.transactionid is not distinct from wl.transactionid
             and hl.classid is not distinct from wl.classid and hl.objid is not distinct from wl.objid
             and hl.objsubid is not distinct from wl.objsubid
    join conflicts c on c.mode = wl.mode and hl.mode = any(c.conflicting)
    join held_by_prepared p on p.virtualtransaction = hl.virtualtransaction
    where wl.pid = w.pid and not wl.granted and 0 = any(w.blocked_by)
  ) g on true
  union all
  select 'prepared', 0, null, ($2::int8 - (extract(epoch from p.prepared) * 1000000)::int8) / 1e6::float8,
         p.gid, p.database::text, p.owner::text, null
  from pg_prepared_xacts p`;

/** Sessions the snapshot shows waiting on a lock. */
export function lockWaiters(sessions: readonly Session[]): Session[] {
  return sessions.filter((s) => s.waitEventType === 'Lock');
}

/**
 * One round trip: the blockers and wait ages of the snapshot's waiters, and every prepared
 * transaction; `clockUs` is the session snapshot's server clock (Snapshot.clockUs).
 */
export async function fetchLocks(db: Queryable, sessions: readonly Session[], clockUs: number): Promise<LockSnapshot> {
  const { rows } = await db.query<{
    kind: string;
    pid: number;
    blocked_by: number[] | null;
    seconds: number | null;
    gid: string | null;
    database: string | null;
    owner: string | null;
    gids: string[] | null;
  }>(LOCKS_SQL, [lockWaiters(sessions).map((s) => s.pid), String(Math.trunc(clockUs))]);
  const waits = new Map<number, LockWait>();
  const prepared: PreparedXact[] = [];
  for (const r of rows) {
    if (r.kind === 'wait') {
      // A waiter that stopped waiting between the snapshot and this statement has no blockers.
      if (r.blocked_by && r.blocked_by.length > 0) {
        // A wait that began after the snapshot's clock (it was granted and waits again) is at 0.
        const waitSeconds = r.seconds === null ? null : Math.max(0, r.seconds);
        waits.set(r.pid, { pid: r.pid, blockedBy: r.blocked_by, waitSeconds, ...(r.gids ? { preparedGids: r.gids } : {}) });
      }
    } else prepared.push({ gid: r.gid ?? '', database: r.database ?? '', owner: r.owner ?? '', ageSeconds: Math.max(0, r.seconds ?? 0) });
  }
  return { waits, prepared };
}
