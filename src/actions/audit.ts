/**
 * The audit log: one JSON line per action (pino, component "audit", `audit: true`). Restore SQL
 * rides along where an action removed something, so nothing is lost. Never a password or verifier.
 */
import type { Logger } from 'pino';
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
