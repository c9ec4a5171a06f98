/**
 * The executor: does what the planner decided, never decides. All kills of one policy run go to
 * the server in one statement that re-checks each backend's condition (kill-sql.ts); a backend
 * that no longer matches is `gone`. Returns results instead of throwing.
 */
import type { TargetDb } from '../db/pool.js';
import { errorReason } from '../db/pg-errors.js';
import { batchKillSql } from './kill-sql.js';
import type { SessionActionPlan } from './types.js';

/**
 * Sends every `planned` action of one policy run in one round trip and sets each result:
 * `done` (signal sent), `gone` (no longer matched, or vanished), `failed` (the statement failed).
 * All plans of one run share one re-check (same policy).
 */
export async function executeSessionActions(db: TargetDb, plans: readonly SessionActionPlan[]): Promise<void> {
  const due = plans.filter((p) => p.result === 'planned');
  const first = due[0];
  if (!first) return;
  const recheck = first.violation.recheck;
  try {
    const { rows } = await db.query<{ pid: number; signalled: boolean | null }>(batchKillSql(recheck), [
      due.map((p) => p.violation.session.pid),
      due.map((p) => p.violation.session.backendStartUs ?? '0'),
      due.map((p) => p.action),
      recheck.states,
      recheck.thresholdSeconds,
    ]);
    const signalled = new Map(rows.map((r) => [r.pid, r.signalled]));
    for (const plan of due) {
      const hit = signalled.get(plan.violation.session.pid);
      if (hit === true) plan.result = 'done';
      else {
        plan.result = 'gone';
        plan.detail = hit === false ? 'the backend exited before the signal' : 'no longer matched at the re-check (ended, changed state, or a new backend with the same pid)';
      }
    }
  } catch (err) {
    for (const plan of due) {
      plan.result = 'failed';
      plan.detail = errorReason(err);
    }
  }
}
