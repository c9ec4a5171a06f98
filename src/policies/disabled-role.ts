/**
 * `disabled_role`: which roles count as disabled. A role is disabled when any configured
 * condition holds; reserved pg_* roles and the marker role itself never are.
 */
import type { DisabledWhen } from '../config/policies.js';
import { compileGlobs } from '../config/glob.js';
import type { RoleInfo } from '../db/snapshot.js';

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
