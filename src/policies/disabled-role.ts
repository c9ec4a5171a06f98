/**
 * `disabled_role`: which roles count as disabled. A role is disabled when any configured
 * condition holds; reserved pg_* roles and the marker role itself never are.
 */
import type { DisabledRolePolicy, DisabledWhen } from '../config/policies.js';
import { compileGlobs } from '../config/glob.js';
import { membersOf, type RoleInfo, type RoleSnapshot } from '../db/snapshot.js';
import { roleMatcher } from './match.js';
import { sortByRole, type RoleViolation } from './types.js';

/** The sub-case that makes a role disabled (DESIGN.md `condition`). */
export type DisabledCondition = 'nologin' | 'expired' | 'memberOf' | 'listed';

/**
 * The first condition that holds for `role`, or null. `markerMembers` holds every role that
 * belongs to `when.memberOf`, directly or inherited (membersOf).
 */
export function disabledCondition(role: RoleInfo, when: DisabledWhen, markerMembers: ReadonlySet<string>): DisabledCondition | null {
  if (role.role.startsWith('pg_') || role.role === when.memberOf) return null;
  if (when.roles.length > 0 && compileGlobs(when.roles)(role.role)) return 'listed';
  if (when.memberOf !== undefined && markerMembers.has(role.role)) return 'memberOf';
  // NOLOGIN does not end existing sessions: a NOLOGIN role is only a problem while it has some.
  if (when.nologin && !role.login && role.sessions > 0) return 'nologin';
  if (when.expired && role.validSeconds !== null && role.validSeconds < 0) return 'expired';
  return null;
}

const REASONS: Readonly<Record<DisabledCondition, (role: RoleInfo, when: DisabledWhen) => string>> = {
  listed: () => 'listed in disabledWhen.roles',
  memberOf: (_r, when) => `member of ${when.memberOf ?? ''}`,
  nologin: (r) => `NOLOGIN but still has ${r.sessions} session${r.sessions > 1 ? 's' : ''} (ALTER ROLE NOLOGIN does not end existing sessions)`,
  expired: (r) =>
    Number.isFinite(r.validSeconds) ? `password expired ${Math.floor(-(r.validSeconds ?? 0) / 86_400)} days ago` : 'VALID UNTIL -infinity: password logins refused for good',
};

/** Disabled roles, one violation each, with the policy's actions in the fixed order. */
export function disabledRole(snapshot: RoleSnapshot, policy: DisabledRolePolicy): RoleViolation[] {
  const markerMembers = policy.disabledWhen.memberOf === undefined ? new Set<string>() : membersOf(snapshot.roles, policy.disabledWhen.memberOf);
  const out: RoleViolation[] = [];
  const inScope = roleMatcher(policy.match);
  for (const role of snapshot.roles) {
    const condition = disabledCondition(role, policy.disabledWhen, markerMembers);
    if (condition === null || !inScope(role.role)) continue;
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
  return sortByRole(out);
}
