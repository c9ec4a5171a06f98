/**
 * Ending sessions after a lockout (DESIGN.md, Safety rules: "A lockout ends the sessions it finds
 * after its NOLOGIN (or REVOKE CONNECT) has committed, read then, not from a snapshot taken
 * before"). A session that logged in between an earlier snapshot and the NOLOGIN's commit would
 * otherwise live on for days: so the sessions are read afresh once the lock holds, ended, and the
 * end is verified, bounded — whatever shows up meanwhile (a login whose authentication had
 * already passed the catalog check) is ended too.
 */
import type { Session, Snapshot } from '../db/snapshot.js';
import type { TargetDb } from '../db/pool.js';
import { backendKey } from '../policies/types.js';
import { terminateSessions, type RoleActionPlan } from './role-actions.js';

/** How long a lockout waits for the backends it signalled to exit before it reports them `failed`. */
export const LOCKOUT_VERIFY_MS = 5000;

export interface EndSessionsOptions {
  /** A fresh session snapshot, read now (never a cached one). */
  readonly read: () => Promise<Snapshot>;
  /** The terminations to do, from a snapshot (pure: planTerminations, with the run's limits). */
  readonly plan: (snapshot: Snapshot) => RoleActionPlan[];
  /**
   * True for sessions that cannot legitimately exist once the lock holds (a NOLOGIN role's,
   * every session of a database whose connections are refused): found while verifying, they are
   * ended too, and at least one verification read looks for them. Without it only the signalled
   * backends are waited for (a role still allowed to log in may open new sessions at will).
   */
  readonly lockedOut?: (session: Session) => boolean;
  /** Milliseconds to wait for the signalled backends to exit (LOCKOUT_VERIFY_MS). */
  readonly verifyMs?: number;
  /** Milliseconds between verification reads. */
  readonly pollMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function keyOf(plan: RoleActionPlan): string {
  return plan.session ? backendKey(plan.session) : '';
}

/**
 * Reads the sessions, ends those `plan` picks, and verifies they are gone; returns every
 * terminate action with its result (`failed` for a backend still there after `verifyMs`).
 * Throws only when the first read fails (nothing was done then).
 */
export async function endSessionsAfterLock(db: TargetDb, options: EndSessionsOptions): Promise<RoleActionPlan[]> {
  const verifyMs = options.verifyMs ?? LOCKOUT_VERIFY_MS;
  const kills = options.plan(await options.read());
  await terminateSessions(db, kills);
  const seen = new Set(kills.map(keyOf));
  const deadline = Date.now() + verifyMs;
  const lockedOut = options.lockedOut;
  // Under a lock, one more look after a first clean read: a backend past its login check may not
  // be in pg_stat_activity yet (or, on 18, not yet show its role).
  let lookedAgain = lockedOut === undefined;
  for (;;) {
    const signalled = kills.filter((k) => k.result === 'done');
    if (signalled.length === 0 && lockedOut === undefined) return kills;
    let now: Snapshot;
    try {
      now = await options.read();
    } catch {
      // The kills were sent; a failed verification read leaves their results as they are.
      return kills;
    }
    const present = new Set(now.sessions.map(backendKey));
    const latecomers = lockedOut ? options.plan(now).filter((p) => p.session && !seen.has(keyOf(p)) && lockedOut(p.session)) : [];
    // Bounded too: a lock that somehow lets sessions in must not keep the command busy forever.
    if (latecomers.length > 0 && Date.now() < deadline) {
      for (const p of latecomers) seen.add(keyOf(p));
      await terminateSessions(db, latecomers);
      kills.push(...latecomers);
      continue;
    }
    for (const p of latecomers) {
      // Past the deadline: reported, not chased.
      kills.push({ ...p, result: 'failed', detail: `appeared after the lock held, and was not ended within ${Math.round(verifyMs / 100) / 10}s` });
    }
    const still = signalled.filter((k) => present.has(keyOf(k)));
    if (still.length === 0) {
      if (lookedAgain || Date.now() >= deadline) return kills;
      lookedAgain = true;
      await sleep(100);
      continue;
    }
    if (Date.now() >= deadline) {
      for (const k of still) {
        Object.assign(k, { result: 'failed', detail: `the backend was signalled but is still connected ${Math.round(verifyMs / 100) / 10}s later` });
      }
      return kills;
    }
    await sleep(options.pollMs ?? 50);
  }
}
