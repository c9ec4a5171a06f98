/**
 * The audit log: one JSON line per action (pino, component "audit", `audit: true`). Restore SQL
 * rides along where an action removed something, so nothing is lost. Never a password or verifier.
 */
import type { Logger } from 'pino';
import { restoreSql, type Grant } from '../db/grants.js';
import { ADDUSER_POLICY, addUserStepJson, type AddUserStep } from './adduser.js';
import type { RoleActionPlan } from './role-actions.js';

/** Writes the audit line of one role (or manual) action. */
export function auditRoleAction(audit: Logger, kind: string, action: RoleActionPlan, dryRun: boolean): void {
  const line = {
    audit: true,
    target: action.target,
    policy: action.policy,
    kind,
    action: action.action,
    result: action.result,
    dryRun,
    role: action.role,
    ...(action.session
      ? {
          pid: action.session.pid,
          database: action.session.database,
          application: action.session.application,
          clientAddr: action.session.clientAddr,
          state: action.session.state,
        }
      : {}),
    ...(action.database !== undefined ? { database: action.database } : {}),
    sql: action.sql,
    ...(action.restore !== undefined && action.result === 'done' ? { restore: action.restore } : {}),
    ...(action.effective !== undefined ? { effective: action.effective } : {}),
    ...(action.detail !== undefined ? { detail: action.detail } : {}),
  };
  if (action.result === 'failed') audit.error(line, 'action failed');
  else audit.info(line, `${action.action} ${action.result}`);
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
  const line = { audit: true, kind: ADDUSER_POLICY, dryRun, ...addUserStepJson(step) };
  if (step.result === 'failed') audit.error(line, 'action failed');
  else audit.info(line, `${step.action} ${step.result}`);
}
