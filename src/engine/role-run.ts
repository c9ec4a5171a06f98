/**
 * A role policy's run on one target: evaluate the role snapshot, read only the facts its actions
 * need, plan (protection, what pgwarden may not alter, cap, breaker), execute when enforcing and
 * leading — the lockout first, then the sessions read afresh and ended, then the revokes — and
 * record every action (counter and audit line, restore SQL first).
 */
import type { Mode, Policy } from '../config/policies.js';
import { auditRestorePoints, auditRoleAction } from '../actions/audit.js';
import { endSessionsAfterLock } from '../actions/lockout.js';
import { acts, breakerVerdict, countClientSessions, limitPlans } from '../actions/planner.js';
import {
  executeRoleActions,
  planRoleActions,
  planTerminations,
  roleActionJson,
  roleViolationJson,
  rolesToEnd,
  type RoleActionPlan,
} from '../actions/role-actions.js';
import { fetchRoleGrants } from '../db/grants.js';
import type { TargetDb } from '../db/pool.js';
import { fetchAlterRefusals, fetchConnectableDatabases } from '../db/roles.js';
import { countLogins } from '../db/snapshot.js';
import { evaluateRolePolicy, keptMembership, recordRolePolicy } from '../policies/registry.js';
import type { RoleViolation } from '../policies/types.js';
import { lazyReport, type RunContext, type RunReport } from './context.js';
import type { Snapshots } from './snapshots.js';

export async function runRolePolicy(context: RunContext, db: TargetDb, policy: Policy, snapshots: Snapshots, mode: Mode): Promise<RunReport> {
  const roles = await snapshots.roles();
  const { exempt, safety } = context.config.settings;
  const evaluation = evaluateRolePolicy(roles, policy, {
    directory: (name) => context.directories.view(name, `${db.name}/${policy.name}`),
    directories: context.config.directories.map((d) => d.name),
    exempt,
    safety,
    now: context.clock(),
  });
  // A directory answer that would disable too many roles at once is refused: the directory decides nothing.
  for (const use of evaluation.directories) {
    const watcher = context.directories.get(use.directory);
    const key = `${db.name}/${policy.name}`;
    if (use.refused !== undefined) watcher?.refuse(key, use.answer, use.refused);
    else watcher?.accept(key);
  }
  const violations = evaluation.violations;
  const wants = (kind: string) => violations.some((v) => v.actions.some((a) => a === kind));
  // The session snapshot and the per-role facts are read only when an action needs them.
  const sessions = wants('terminate') ? (await snapshots.sessions()).sessions : [];
  const connectable = wants('revoke_connect')
    ? await fetchConnectableDatabases(db, violations.filter((v) => v.actions.includes('revoke_connect')).map((v) => v.role.role))
    : new Map<string, string[]>();
  const revoking = violations.filter((v) => v.actions.includes('revoke_privileges')).map((v) => v.role.role);
  const grants = revoking.length > 0 ? await fetchRoleGrants(db, revoking) : undefined;
  for (const s of grants?.skipped ?? []) {
    context.log.error({ target: db.name, policy: policy.name, database: s.database }, `revoke_privileges: database not searched (${s.reason}); its grants stay`);
  }
  const ineffective = context.history.ineffective(db.name, policy.name);
  const kept = keptMembership(policy);
  const acting = { mode, leads: context.readiness.leads(db.name) };
  const input = {
    violations,
    acting,
    sessions,
    connectable,
    maxActionsPerRun: policy.maxActionsPerRun,
    exempt,
    safety,
    ownPids: db.ownPids,
    self: roles.self,
    loginRoles: countLogins(roles.roles),
    knownIneffective: ineffective,
    ...(grants ? { grants: grants.grants } : {}),
    ...(kept !== undefined ? { keepMembershipIn: kept } : {}),
  };
  const draft = planRoleActions(input);
  // What pgwarden's role may not alter is failed from the plan on (and the rest of that role held
  // back): asked only of the NOLOGINs still planned after protection, cap and breaker, then planned
  // again with the answer (pure: no second read). A superuser may alter any role: no question, no round trip.
  const locking = roles.self.superuser ? [] : draft.actions.filter((a) => a.action === 'nologin' && a.result === 'planned').map((a) => a.role);
  const plan = locking.length > 0 ? planRoleActions({ ...input, refusals: await fetchAlterRefusals(db, locking) }) : draft;
  for (const { role, reason } of plan.reserved) {
    context.warnings.give(`reserved/${db.name}/${policy.name}/${role}`, db.name, `policy ${policy.name}: role ${JSON.stringify(role)} is ${reason}: pgwarden never acts on it (skipped)`);
  }
  let actions = plan.actions;
  if (acts(acting)) {
    auditRestorePoints(context.audit, policy.kind, plan.actions);
    const ending = plan.breaker ? new Set<string>() : rolesToEnd(plan.violations);
    actions = await executeRoleActions(db, plan.actions, {
      lockTimeoutMs: context.config.lockTimeoutMs,
      endSessions: { roles: ending, end: (endingNow, done) => endRoleSessions(context, db, policy, endingNow, plan.violations, done) },
    });
  }
  for (const a of actions) {
    if (a.action === 'revoke_connect' && a.effective === false) ineffective.add(`${a.role}/${a.database ?? ''}`);
  }
  context.metrics.countActions(db.name, policy.name, actions);
  // A run that does not act logs a persisting violation once, again when it changes, then once per audit.repeatAfter.
  const logged = acts(acting)
    ? actions
    : context.auditRepeats.due(db.name, policy.name, actions, (a) => `${a.action}\u0000${a.role}\u0000${a.database ?? ''}\u0000${a.sql}`, (a) => `${a.result}\u0000${a.detail ?? ''}`);
  for (const action of logged) auditRoleAction(context.audit, policy.kind, action, mode === 'dry-run');
  if (plan.breaker) context.log.error({ target: db.name, policy: policy.name }, plan.breaker);
  recordRolePolicy(context.metrics, db.name, policy, plan.violations);
  const refused = evaluation.directories.flatMap((u) => (u.refused !== undefined ? [`directory ${u.directory}: answer refused: ${u.refused}`] : []));
  return lazyReport(plan.violations, actions, { violation: roleViolationJson, action: roleActionJson }, refused.length > 0 ? refused.join('; ') : undefined);
}

/**
 * Ends the sessions of `roles` once their NOLOGIN (or REVOKE CONNECT) committed, from a fresh
 * read, under what is left of the cap and under the circuit breaker, and verifies they are gone.
 */
function endRoleSessions(
  context: RunContext,
  db: TargetDb,
  policy: Policy,
  roles: ReadonlySet<string>,
  violations: readonly RoleViolation[],
  done: readonly RoleActionPlan[],
): Promise<RoleActionPlan[]> {
  const { exempt, safety } = context.config.settings;
  // Roles nobody can log in as any more: whatever session of theirs shows up is ended too.
  const lockedOut = new Set(violations.filter((v) => !v.role.login).map((v) => v.role.role));
  for (const a of done) if (a.action === 'nologin' && a.result === 'done') lockedOut.add(a.role);
  const room = policy.maxActionsPerRun - done.filter((a) => a.action !== 'terminate' && a.result !== 'skipped').length;
  return endSessionsAfterLock(db, {
    read: () => context.snapshots.sessions(db),
    plan: (snapshot) => {
      const kills = planTerminations({ target: db.name, policy: policy.name, roles, exempt, ownPids: db.ownPids, self: snapshot.self }, snapshot.sessions);
      const limited = limitPlans(kills, room, policy.maxActionsPerRun, (capped) =>
        breakerVerdict(capped.filter((k) => k.result === 'planned').length, countClientSessions(snapshot.sessions, db.ownPids), 'client sessions', safety),
      );
      if (limited.breaker) context.log.error({ target: db.name, policy: policy.name }, limited.breaker);
      return limited.plans;
    },
    lockedOut: (s) => lockedOut.has(s.role ?? ''),
  });
}
