/**
 * A session policy's run on one target: evaluate the snapshot, plan (exemptions, cap, breaker,
 * what cannot be signalled), execute when enforcing and leading, remember cancels, record every
 * action (counter and audit line).
 */
import type { Mode, Policy } from '../config/policies.js';
import { auditSessionAction } from '../actions/audit.js';
import { executeSessionActions } from '../actions/executor.js';
import { acts, countClientSessions, planSessionActions, protectionOf, unactionable } from '../actions/planner.js';
import { sessionActionJson, sessionViolationJson } from '../actions/types.js';
import type { TargetDb } from '../db/pool.js';
import type { Session, Snapshot } from '../db/snapshot.js';
import { backendKey } from '../policies/types.js';
import { evaluateSessionPolicy, recordSessionPolicy, remembersCancels } from '../policies/registry.js';
import { lazyReport, type RunContext, type RunReport } from './context.js';

export async function runSessionPolicy(context: RunContext, db: TargetDb, policy: Policy, snapshot: Snapshot, mode: Mode): Promise<RunReport> {
  const { exempt, safety, audit: auditSettings } = context.config.settings;
  const acting = { mode, leads: context.readiness.leads(db.name) };
  // What a kind that chooses how many to end may choose: never what it may not act on or could not signal.
  const candidate = (session: Session) => protectionOf(session, exempt, db.ownPids, snapshot.self) === null && unactionable(session) === null;
  const violations = evaluateSessionPolicy(snapshot, policy, context.history.of(db.name, policy.name), { candidate });
  const plan = planSessionActions({
    violations,
    maxActionsPerRun: policy.maxActionsPerRun,
    clientSessions: countClientSessions(snapshot.sessions, db.ownPids),
    exempt,
    safety,
    ownPids: db.ownPids,
    self: snapshot.self,
    acting,
  });
  const actions = acts(acting) ? await executeSessionActions(db, plan.actions) : plan.actions;
  if (remembersCancels(policy)) context.history.rememberCancels(db.name, policy.name, actions);
  const line = { target: db.name, policy: policy.name, kind: policy.kind, dryRun: mode === 'dry-run', query: { include: auditSettings.includeQuery, maxLength: auditSettings.queryMaxLength } };
  context.metrics.countActions(db.name, policy.name, actions);
  // A run that does not act logs a persisting violation once, again when it changes, then once per audit.repeatAfter.
  const logged = acts(acting)
    ? actions
    : context.auditRepeats.due(db.name, policy.name, actions, (a) => `${a.action}\u0000${backendKey(a.violation.session)}`, (a) => `${a.result}\u0000${a.detail ?? ''}`);
  for (const action of logged) auditSessionAction(context.audit, line, action);
  if (plan.breaker) context.log.error({ target: db.name, policy: policy.name }, plan.breaker);
  recordSessionPolicy(context.metrics, db.name, policy, snapshot);
  // A pile-up nothing can end (a prepared transaction at its root) is said once while it lasts.
  const key = `prepared/${db.name}/${policy.name}`;
  const stuck = plan.violations.filter((v) => v.condition === 'prepared');
  if (stuck.length > 0) context.warnings.give(key, db.name, `policy ${policy.name}: ${stuck.map((v) => v.reason).join('; ')}`);
  else context.warnings.clear(key);
  return lazyReport(plan.violations, actions, { violation: sessionViolationJson, action: sessionActionJson });
}
