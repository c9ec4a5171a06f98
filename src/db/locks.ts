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
  readonly waitSeconds: number | null;
}

export interface PreparedXact {
  readonly gid: string;
  readonly database: string;
  readonly owner: string;
  readonly ageSeconds: number;
}

export interface LockSnapshot {
  readonly waits: ReadonlyMap<number, LockWait>;
  readonly prepared: readonly PreparedXact[];
}

/*
 * pg_locks is a function (pg_lock_status) that copies the whole lock table on every call: read
 * once for every waiter, not once per waiter (a correlated subquery made it 50 copies for 50
 * waiters), and not at all when nobody waits (the one-time filter on the waiter list).
 */
export const LOCKS_SQL = `
  select 'wait' as kind, w.pid, pg_blocking_pids(w.pid) as blocked_by,
         extract(epoch from (n.now - l.waitstart))::float8 as seconds,
         null::text as gid, null::text as database, null::text as owner
  from unnest($1::int[]) as w(pid)
  cross join (select clock_timestamp() as now) n
  left join (
    select pid, min(waitstart) as waitstart
    from pg_locks
    where not granted and cardinality($1::int[]) > 0
    group by pid
  ) l on l.pid = w.pid
  union all
  select 'prepared', 0, null, extract(epoch from (clock_timestamp() - p.prepared))::float8,
         p.gid, p.database::text, p.owner::text
  from pg_prepared_xacts p`;

/** Sessions the snapshot shows waiting on a lock. */
export function lockWaiters(sessions: readonly Session[]): Session[] {
  return sessions.filter((s) => s.waitEventType === 'Lock');
}

export async function fetchLocks(db: Queryable, sessions: readonly Session[]): Promise<LockSnapshot> {
  const { rows } = await db.query<{ kind: string; pid: number; blocked_by: number[] | null; seconds: number | null; gid: string | null; database: string | null; owner: string | null }>(
    LOCKS_SQL,
    [lockWaiters(sessions).map((s) => s.pid)],
  );
  const waits = new Map<number, LockWait>();
  const prepared: PreparedXact[] = [];
  for (const r of rows) {
    if (r.kind === 'wait') {
      // A waiter that stopped waiting between the snapshot and this statement has no blockers.
      if (r.blocked_by && r.blocked_by.length > 0) waits.set(r.pid, { pid: r.pid, blockedBy: r.blocked_by, waitSeconds: r.seconds });
    } else prepared.push({ gid: r.gid ?? '', database: r.database ?? '', owner: r.owner ?? '', ageSeconds: r.seconds ?? 0 });
  }
  return { waits, prepared };
}
