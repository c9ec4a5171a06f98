/** Actions: what the planner decided and what the executor made of it (DESIGN.md JSON shapes). */
import type { SessionViolation } from '../policies/types.js';

export type ActionResult = 'planned' | 'done' | 'gone' | 'skipped' | 'failed';
export const ACTION_RESULTS: readonly ActionResult[] = ['planned', 'done', 'gone', 'skipped', 'failed'];

/** One action on one session, with the statement that does it alone. */
export interface SessionActionPlan {
  readonly violation: SessionViolation;
  readonly action: 'terminate' | 'cancel';
  /** Runnable as printed: the single-session form of the batched statement, with the same re-check. */
  readonly sql: string;
  readonly result: ActionResult;
  readonly detail?: string;
}

/** DESIGN.md `action` shape. */
export interface ActionJson {
  target: string;
  policy: string;
  action: string;
  role: string | null;
  pid?: number;
  database?: string | null;
  sql: string;
  result: ActionResult;
  effective?: boolean;
  detail?: string;
}

/** DESIGN.md `violation` shape. */
export interface ViolationJson {
  target: string;
  policy: string;
  kind: string;
  condition?: string;
  role: string | null;
  pid?: number;
  backendStart?: Date | null;
  database?: string | null;
  application?: string;
  clientAddr?: string | null;
  state?: string | null;
  seconds?: number;
  overSeconds?: number;
  reason: string;
}

export function sessionViolationJson(v: SessionViolation): ViolationJson {
  if (v.condition === 'prepared') {
    // No backend: no pid, start, application or state to show; the gid is in the reason.
    return {
      target: v.target,
      policy: v.policy,
      kind: v.kind,
      condition: v.condition,
      role: v.session.role,
      database: v.session.database,
      seconds: round(v.seconds),
      overSeconds: round(v.overSeconds),
      reason: v.reason,
    };
  }
  return {
    target: v.target,
    policy: v.policy,
    kind: v.kind,
    ...(v.condition !== undefined ? { condition: v.condition } : {}),
    role: v.session.role,
    pid: v.session.pid,
    backendStart: v.session.backendStart,
    database: v.session.database,
    application: v.session.application,
    clientAddr: v.session.clientAddr,
    state: v.session.state,
    seconds: round(v.seconds),
    overSeconds: round(v.overSeconds),
    reason: v.reason,
  };
}

export function sessionActionJson(a: SessionActionPlan): ActionJson {
  return {
    target: a.violation.target,
    policy: a.violation.policy,
    action: a.action,
    role: a.violation.session.role,
    pid: a.violation.session.pid,
    database: a.violation.session.database,
    sql: a.sql,
    result: a.result,
    ...(a.detail !== undefined ? { detail: a.detail } : {}),
  };
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
