/**
 * The audit log: one JSON line per action (pino, component "audit", `audit: true`). Restore SQL
 * rides along where an action removed something, so nothing is lost. Never a password or verifier.
 */
import type { Logger } from 'pino';
import { restoreSql, type Grant } from '../db/grants.js';
import { ADDUSER_POLICY, addUserStepJson, type AddUserStep } from './adduser.js';
import type { Session } from '../db/snapshot.js';
import type { RoleActionPlan } from './role-actions.js';
import type { SessionActionPlan } from './types.js';

/** Writes one audit line: an error when the action failed, else info. */
/** Whether the audit line of an action with `result` would be written at all (nothing is built otherwise). */
function audited(audit: Logger, result: string): boolean {
  return audit.isLevelEnabled(result === 'failed' ? 'error' : 'info');
}

function writeAuditLine(audit: Logger, line: Record<string, unknown> & { action: string; result: string }): void {
  if (line.result === 'failed') audit.error(line, 'action failed');
  else audit.info(line, `${line.action} ${line.result}`);
}

/** Who an action on a session was about. */
function sessionFields(s: Session): Record<string, unknown> {
  return { pid: s.pid, database: s.database, application: s.application, clientAddr: s.clientAddr, state: s.state };
}

/** Writes the audit line of one session action of a policy run (kill or cancel). */
export function auditSessionAction(
  audit: Logger,
  context: { target: string; policy: string; kind: string; dryRun: boolean; query: { include: boolean; maxLength: number } },
  action: SessionActionPlan,
): void {
  if (!audited(audit, action.result)) return;
  const s = action.violation.session;
  writeAuditLine(audit, {
    audit: true,
    target: context.target,
    policy: context.policy,
    kind: context.kind,
    action: action.action,
    result: action.result,
    dryRun: context.dryRun,
    role: s.role,
    ...sessionFields(s),
    seconds: Math.round(action.violation.seconds),
    overSeconds: Math.round(action.violation.overSeconds),
    reason: action.violation.reason,
    ...(action.detail !== undefined ? { detail: action.detail } : {}),
    ...(context.query.include && s.query !== null ? { query: s.query.slice(0, context.query.maxLength) } : {}),
  });
}

/** Writes the audit line of one role (or manual) action. */
export function auditRoleAction(audit: Logger, kind: string, action: RoleActionPlan, dryRun: boolean): void {
  if (!audited(audit, action.result)) return;
  const line = {
    audit: true,
    target: action.target,
    policy: action.policy,
    kind,
    action: action.action,
    result: action.result,
    dryRun,
    role: action.role,
    ...(action.session ? sessionFields(action.session) : {}),
    ...(action.database !== undefined ? { database: action.database } : {}),
    sql: action.sql,
    ...(action.restore !== undefined && action.result === 'done' ? { restore: action.restore } : {}),
    ...(action.effective !== undefined ? { effective: action.effective } : {}),
    ...(action.detail !== undefined ? { detail: action.detail } : {}),
  };
  writeAuditLine(audit, line);
}

/**
 * Before anything is revoked or dropped: one line per grant with the SQL that restores it, so
 * nothing is lost. One line per grant: a log line over 16 KiB is split by container runtimes.
 */
export function auditGrants(
  audit: Logger,
  context: { target: string; policy: string; kind: string; role: string },
  grants: readonly Grant[],
  cascaded: (grant: Grant) => boolean = () => false,
): void {
  for (const grant of grants) {
    audit.info(
      {
        audit: true,
        ...context,
        action: 'restore_point',
        database: grant.database,
        grantee: grant.grantee,
        grantor: grant.grantor,
        cascade: cascaded(grant),
        restore: restoreSql(grant),
      },
      'grant recorded before it is removed',
    );
  }
}

/** The restore points of planned revokes: each grant and every grant that cascades away with it. */
export function auditRestorePoints(audit: Logger, kind: string, plans: readonly RoleActionPlan[]): void {
  for (const plan of plans) {
    if (plan.result !== 'planned' || !plan.grant) continue;
    const own = plan.grant;
    auditGrants(audit, { target: plan.target, policy: plan.policy, kind, role: plan.role }, [own, ...(plan.cascades ?? [])], (g) => g !== own);
  }
}

/** The audit line of one `adduser` statement (its SQL printed with the verifier as '***'). */
export function auditAddUserStep(audit: Logger, step: AddUserStep, dryRun: boolean): void {
  writeAuditLine(audit, { audit: true, kind: ADDUSER_POLICY, dryRun, ...addUserStepJson(step) });
}
