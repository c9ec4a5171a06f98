/**
 * The lock graph, pure: who blocks whom, from the session snapshot and the lock waits. A DAG,
 * not a tree — a waiter queued behind two holders hangs under both. A root blocks someone and
 * waits on nobody; pid 0 stands for prepared transactions, which no signal can end.
 */
import type { LockSnapshot, PreparedXact } from '../db/locks.js';
import type { Session } from '../db/snapshot.js';

export interface LockNode {
  pid: number;
  role: string | null;
  database: string | null;
  application: string | null;
  clientAddr: string | null;
  state: string | null;
  xactSeconds: number | null;
  waitSeconds: number | null;
  query: string | null;
  blockedBy: number[];
  waiters: LockNode[];
}

export interface LockRoot extends LockNode {
  /** Distinct sessions waiting on this one directly, and in all (through others). */
  blocks: number;
  blocksTotal: number;
  /** The longest wait among every session it blocks. */
  oldestWaitSeconds: number;
  /**
   * pid 0: the prepared transactions that block its waiters (those holding a conflicting lock on
   * what they wait for; all of them when that cannot be told). The root's database and role are
   * the first one's, its xactSeconds the oldest one's age since PREPARE.
   */
  prepared?: PreparedXact[];
}

export interface LockGraph {
  /** Sessions waiting on a lock. */
  waiting: number;
  roots: LockRoot[];
}

const QUERY_CHARS = 200;

export function buildLockGraph(sessions: readonly Session[], locks: LockSnapshot): LockGraph {
  const byPid = new Map(sessions.map((s) => [s.pid, s]));
  const waitersOf = new Map<number, number[]>();
  for (const w of locks.waits.values()) {
    for (const b of new Set(w.blockedBy)) waitersOf.set(b, [...(waitersOf.get(b) ?? []), w.pid]);
  }
  const node = (pid: number, path: ReadonlySet<number>): LockNode => {
    const s = byPid.get(pid);
    const wait = locks.waits.get(pid);
    const next = new Set(path).add(pid);
    return {
      pid,
      role: s?.role ?? null,
      database: s?.database ?? null,
      application: s?.application ?? null,
      clientAddr: s?.clientAddr ?? null,
      state: s?.state ?? null,
      xactSeconds: s?.xactSeconds ?? null,
      waitSeconds: wait?.waitSeconds ?? null,
      query: s?.query === null || s?.query === undefined ? null : s.query.slice(0, QUERY_CHARS),
      blockedBy: wait ? [...new Set(wait.blockedBy)] : [],
      // A cycle (a deadlock the server has not broken yet) stops at the repeated pid.
      waiters: (waitersOf.get(pid) ?? []).filter((w) => !next.has(w)).map((w) => node(w, next)),
    };
  };
  const reachable = (pid: number): Set<number> => {
    const seen = new Set<number>();
    const stack = [...(waitersOf.get(pid) ?? [])];
    while (stack.length > 0) {
      const p = stack.pop() as number;
      if (seen.has(p) || p === pid) continue;
      seen.add(p);
      stack.push(...(waitersOf.get(p) ?? []));
    }
    return seen;
  };
  const roots: LockRoot[] = [];
  for (const pid of waitersOf.keys()) {
    if (locks.waits.has(pid)) continue; // waits itself: not a root
    const all = reachable(pid);
    const root: LockRoot = {
      ...node(pid, new Set()),
      blocks: new Set(waitersOf.get(pid)).size,
      blocksTotal: all.size,
      oldestWaitSeconds: Math.max(0, ...[...all].map((p) => locks.waits.get(p)?.waitSeconds ?? 0)),
      ...(pid === 0 ? preparedRoot(waitersOf.get(0) ?? [], locks) : {}),
    };
    roots.push(root);
  }
  roots.sort((a, b) => b.oldestWaitSeconds - a.oldestWaitSeconds || b.blocksTotal - a.blocksTotal);
  return { waiting: locks.waits.size, roots };
}

/** What the pid-0 root is: the prepared transactions its direct waiters are blocked by. */
function preparedRoot(waiters: readonly number[], locks: LockSnapshot): Pick<LockRoot, 'prepared' | 'database' | 'role' | 'xactSeconds'> {
  const gids = new Set(waiters.flatMap((w) => locks.waits.get(w)?.preparedGids ?? []));
  const blocking = locks.prepared.filter((p) => gids.size === 0 || gids.has(p.gid)).sort((a, b) => b.ageSeconds - a.ageSeconds);
  const first = blocking[0];
  return {
    prepared: blocking,
    database: first?.database ?? null,
    role: first?.owner ?? null,
    xactSeconds: first?.ageSeconds ?? null,
  };
}

/** Pids that block someone now. */
export function blockingPids(locks: LockSnapshot): Set<number> {
  return new Set([...locks.waits.values()].flatMap((w) => w.blockedBy));
}
