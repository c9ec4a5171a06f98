/**
 * Which rule evaluates which kind. Adding a rule is adding a file and a line here.
 */
import type { Policy, PolicyKind } from '../config/policies.js';
import type { Snapshot } from '../db/snapshot.js';
import type { RoleSnapshot } from '../db/snapshot.js';
import { disabledRole } from './disabled-role.js';
import { idleInTransaction } from './idle-in-transaction.js';
import { passwordExpiry } from './password-expiry.js';
import { idleSession } from './idle-session.js';
import { lockBlocker } from './lock-blocker.js';
import { longQuery } from './long-query.js';
import { longTransaction } from './long-transaction.js';
import type { PolicyHistory, RoleViolation, SessionViolation } from './types.js';

/** The session rules, by kind. */
const SESSION_RULES: Partial<Record<PolicyKind, (snapshot: Snapshot, policy: never, history: PolicyHistory) => SessionViolation[]>> = {
  idle_session: idleSession,
  idle_in_transaction: idleInTransaction,
  long_query: longQuery,
  long_transaction: longTransaction,
  lock_blocker: lockBlocker,
};

/** Evaluates a session policy on a snapshot. */
export function evaluateSessionPolicy(snapshot: Snapshot, policy: Policy, history: PolicyHistory): SessionViolation[] {
  const rule = SESSION_RULES[policy.kind];
  if (!rule) throw new Error(`${policy.kind} is not a session policy`);
  return rule(snapshot, policy as never, history);
}

/** The role rules, by kind. */
const ROLE_RULES: Partial<Record<PolicyKind, (roles: RoleSnapshot, policy: never) => RoleViolation[]>> = {
  password_expiry: passwordExpiry,
  disabled_role: disabledRole,
};

/** True for kinds judged on the role snapshot. */
export function isRolePolicy(policy: Policy): boolean {
  return policy.kind in ROLE_RULES;
}

/** Evaluates a role policy on a role snapshot. */
export function evaluateRolePolicy(roles: RoleSnapshot, policy: Policy): RoleViolation[] {
  const rule = ROLE_RULES[policy.kind];
  if (!rule) throw new Error(`${policy.kind} is not a role policy`);
  return rule(roles, policy as never);
}

/** True for policies that need the lock graph attached to their snapshot. */
export function needsLocks(policy: Policy): boolean {
  return policy.kind === 'lock_blocker' || (policy.kind === 'idle_in_transaction' && policy.onlyWhenBlocking);
}
