/**
 * The executor: does what the planner decided, never decides. All kills of one policy run go to
 * the server in one statement that re-checks each backend's condition (kill-sql.ts); a backend
 * that no longer matches is `gone`. Returns results instead of throwing.
 */
import type { TargetDb } from '../db/pool.js';
import { errorReason } from '../db/pg-errors.js';
import type { Recheck, SessionAction } from '../policies/types.js';
import { batchKillSql } from '../db/kill-backends.js';
import type { SessionActionPlan } from './types.js';

/** One backend to signal: its identity (pid + backend_start) and the signal. */
export interface SignalRequest {
  readonly pid: number;
  readonly backendStartUs: string | null;
  readonly action: SessionAction;
}

/**
 * Signals many backends in one statement, re-checking each against `recheck`. Returns, per pid,
 * true (signal sent), false (it exited first), 'denied' (not ours to signal) or null (no longer
 * matched). Throws on failure.
 */
export async function signalBackends(db: TargetDb, requests: readonly SignalRequest[], recheck: Recheck): Promise<Map<number, Signalled>> {
  if (requests.length === 0) return new Map();
  const { rows } = await db.query<{ pid: number; signalled: 'true' | 'false' | 'denied' | 'over' | null }>(batchKillSql(recheck), [
    requests.map((r) => r.pid),
    requests.map((r) => r.backendStartUs ?? '0'),
    requests.map((r) => r.action),
    recheck.states,
    recheck.thresholdSeconds,
    ...(recheck.overLimit ? [recheck.overLimit.limit] : []),
  ]);
  return new Map(rows.map((r) => [r.pid, r.signalled === 'true' ? true : r.signalled === 'false' ? false : r.signalled]));
}

/**
 * true: signal sent; false: the backend exited first; 'denied': not ours to signal; 'over': its
 * group is back within its limit (a limit policy); null: no longer matched.
 */
export type Signalled = boolean | 'denied' | 'over' | null;

/** The result of one signal request, as an action result and detail. */
export function signalOutcome(hit: Signalled | undefined): { result: 'done' | 'gone' | 'failed'; detail?: string } {
  if (hit === true) return { result: 'done' };
  if (hit === 'denied') {
    return { result: 'failed', detail: "not permitted to signal this backend (a superuser's, or another role's without pg_signal_backend)" };
  }
  if (hit === 'over') return { result: 'gone', detail: 'no longer needed: the connections are back within the limit at the re-check' };
  return {
    result: 'gone',
    detail: hit === false ? 'the backend exited before the signal' : 'no longer matched at the re-check (ended, changed state, or a new backend with the same pid)',
  };
}

/** The outcome of one signal: an action result, and why when it is not `done`. */
export interface SignalOutcome {
  readonly result: 'done' | 'gone' | 'failed';
  readonly detail?: string;
}

/**
 * Signals `requests` in one round trip, re-checking each against `recheck`, and returns one
 * outcome per request, in order. If the statement fails as a whole (one signal the server
 * refused aborts it), each is tried on its own, so the others are not held hostage; a request
 * that fails alone is `failed` with the reason. The one batch-with-fallback of every kill path.
 */
export async function signalEach(db: TargetDb, requests: readonly SignalRequest[], recheck: Recheck): Promise<SignalOutcome[]> {
  if (requests.length === 0) return [];
  try {
    const signalled = await signalBackends(db, requests, recheck);
    return requests.map((r) => signalOutcome(signalled.get(r.pid)));
  } catch (err) {
    if (requests.length === 1) return [{ result: 'failed', detail: errorReason(err) }];
    const out: SignalOutcome[] = [];
    for (const r of requests) out.push(...(await signalEach(db, [r], recheck)));
    return out;
  }
}

/**
 * Sends every `planned` action of one policy run in one round trip and returns the actions with
 * their outcomes, in order — new objects, the plans are not touched: `done` (signal sent), `gone`
 * (no longer matched, or vanished), `failed` (the statement failed); the others as planned.
 * All plans of one run share one re-check (same policy).
 */
export async function executeSessionActions(db: TargetDb, plans: readonly SessionActionPlan[]): Promise<SessionActionPlan[]> {
  const due = plans.filter((p) => p.result === 'planned');
  const first = due[0];
  if (!first) return [...plans];
  const outcomes = await signalEach(
    db,
    due.map((p) => ({ pid: p.violation.session.pid, backendStartUs: p.violation.session.backendStartUs, action: p.action })),
    first.violation.recheck,
  );
  const outcomeOf = new Map(due.map((plan, i) => [plan, outcomes[i]]));
  return plans.map((plan) => {
    const outcome = outcomeOf.get(plan);
    return outcome ? { ...plan, ...outcome } : plan;
  });
}
