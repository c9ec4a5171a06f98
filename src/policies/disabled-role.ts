/**
 * `disabled_role`: which roles count as disabled. A role is disabled when any configured
 * condition holds; reserved pg_* roles and the marker role itself never are.
 */
import type { DisabledRolePolicy, DisabledWhen } from '../config/policies.js';
import { compileGlobs } from '../config/glob.js';
import { membershipClosure, type RoleInfo, type RoleSnapshot } from '../db/snapshot.js';
import { matches } from './match.js';
import type { RoleViolation } from './types.js';

/** The sub-case that makes a role disabled (DESIGN.md `condition`). */
export type DisabledCondition = 'nologin' | 'expired' | 'memberOf' | 'listed';

/**
 * The first condition that holds for `role`, or null. `closure` maps each role to every role it
 * belongs to, directly or inherited (membershipClosure).
 */
export function disabledCondition(
  role: RoleInfo,
  when: DisabledWhen,
  closure: ReadonlyMap<string, ReadonlySet<string>>,
): DisabledCondition | null {
  if (role.role.startsWith('pg_') || role.role === when.memberOf) return null;
  if (when.roles.length > 0 && compileGlobs(when.roles)(role.role)) return 'listed';
  if (when.memberOf !== undefined && closure.get(role.role)?.has(when.memberOf)) return 'memberOf';
  // NOLOGIN does not end existing sessions: a NOLOGIN role is only a problem while it has some.
  if (when.nologin && !role.login && role.sessions > 0) return 'nologin';
  if (when.expired && role.validSeconds !== null && role.validSeconds < 0) return 'expired';
  return null;
}

const REASONS: Readonly<Record<DisabledCondition, (role: RoleInfo, when: DisabledWhen) => string>> = {
  listed: () => 'listed in disabledWhen.roles',
  memberOf: (_r, when) => `member of ${when.memberOf ?? ''}`,
  nologin: (r) => `NOLOGIN but still has ${r.sessions} session${r.sessions > 1 ? 's' : ''} (ALTER ROLE NOLOGIN does not end existing sessions)`,
  expired: (r) => `password expired ${Math.floor(-(r.validSeconds ?? 0) / 86_400)} days ago`,
};

/** Disabled roles, one violation each, with the policy's actions in the fixed order. */
export function disabledRole(snapshot: RoleSnapshot, policy: DisabledRolePolicy): RoleViolation[] {
  const closure = membershipClosure(snapshot.roles);
  const out: RoleViolation[] = [];
  for (const role of snapshot.roles) {
    if (!matches(policy.match, { role: role.role })) continue;
    const condition = disabledCondition(role, policy.disabledWhen, closure);
    if (condition === null) continue;
    out.push({
      target: snapshot.target,
      policy: policy.name,
      kind: policy.kind,
      condition,
      role,
      reason: REASONS[condition](role, policy.disabledWhen),
      actions: policy.actions,
    });
  }
  return out;
}
