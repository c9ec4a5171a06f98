/**
 * `disabled_role`: which roles count as disabled. A role is disabled when any configured
 * condition holds; reserved pg_* roles and the marker role itself never are.
 */
import { ConfigError } from '../errors.js';
import { compileGlobs } from '../config/glob.js';
import type { ItemReader, PolicyCommon } from '../config/reader.js';
import type { RoleGaugeSpec } from '../metrics/registry.js';
import type { RoleKindModule } from './kind.js';
import { membersOf, type RoleInfo, type RoleSnapshot } from '../db/snapshot.js';
import { roleMatcher } from './match.js';
import { sortByRole, type RoleViolation } from './types.js';

/** The actions a disabled_role policy may take, in the fixed order they run. */
export const DISABLED_ROLE_ACTIONS = ['nologin', 'terminate', 'revoke_connect', 'revoke_privileges'] as const;
export type DisabledRoleAction = (typeof DISABLED_ROLE_ACTIONS)[number];

export interface DisabledWhen {
  readonly nologin: boolean;
  readonly expired: boolean;
  readonly memberOf: string | undefined;
  readonly roles: readonly string[];
}

export interface DisabledRolePolicy extends PolicyCommon {
  readonly kind: 'disabled_role';
  readonly disabledWhen: DisabledWhen;
  /** In the fixed order nologin, terminate, revoke_connect, revoke_privileges. */
  readonly actions: readonly DisabledRoleAction[];
}

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

function readDisabledWhen(item: ItemReader): DisabledWhen {
  const when = item.child('disabledWhen');
  if (!when) return item.fail('disabledWhen', 'is required: at least one of nologin, expired, memberOf, roles');
  const memberOf = when.has('memberOf') ? when.string('memberOf') : (when.raw('memberOf'), undefined);
  const result: DisabledWhen = {
    nologin: when.boolean('nologin', false),
    expired: when.boolean('expired', false),
    memberOf,
    roles: when.globs('roles'),
  };
  when.rejectUnknown();
  if (!result.nologin && !result.expired && !result.memberOf && result.roles.length === 0) {
    item.fail('disabledWhen', 'sets no condition: give at least one of nologin, expired, memberOf, roles');
  }
  if (result.memberOf?.startsWith('pg_')) {
    throw new ConfigError(`${item.key('disabledWhen')}.memberOf: ${JSON.stringify(result.memberOf)} is a reserved pg_* role`);
  }
  return result;
}

function readDisabledActions(item: ItemReader): DisabledRoleAction[] {
  const value = item.raw('actions');
  if (value === undefined || value === null) return ['nologin', 'terminate', 'revoke_connect'];
  if (!Array.isArray(value) || value.length === 0) return item.fail('actions', `must be a non-empty list of ${DISABLED_ROLE_ACTIONS.join(', ')}`);
  value.forEach((a, i) => {
    if (!DISABLED_ROLE_ACTIONS.includes(a as DisabledRoleAction)) {
      throw new ConfigError(`${item.key('actions')}[${i}]: ${JSON.stringify(a)} is not one of ${DISABLED_ROLE_ACTIONS.join(', ')}`);
    }
  });
  // The order is fixed whatever the list says: NOLOGIN first, so nobody reconnects in between.
  return DISABLED_ROLE_ACTIONS.filter((a) => value.includes(a));
}

/** DESIGN.md `pgwarden_disabled_role_sessions`: what a lockout has still to end, per role. */
export const DISABLED_ROLE_SESSIONS: RoleGaugeSpec = {
  name: 'pgwarden_disabled_role_sessions',
  help: 'Client sessions still open by each disabled role.',
};

export const disabledRoleKind: RoleKindModule<DisabledRolePolicy> = {
  kind: 'disabled_role',
  on: 'roles',
  read: (item, common) => ({ ...common, kind: 'disabled_role', disabledWhen: readDisabledWhen(item), actions: readDisabledActions(item) }),
  evaluate: disabledRole,
  actions: (policy) => [...policy.actions],
  needs: (policy) => ({
    // it counts a role's sessions (the nologin condition), and ends them
    readsSessions: true,
    signals: policy.actions.includes('terminate'),
    altersRoles: policy.actions.includes('nologin'),
    revokesConnect: policy.actions.includes('revoke_connect'),
    revokesPrivileges: policy.actions.includes('revoke_privileges'),
  }),
  keepMembershipIn: (policy) => policy.disabledWhen.memberOf,
  roleGauges: [DISABLED_ROLE_SESSIONS],
  record: (metrics, target, _policy, violations) => {
    metrics.recordRoleGauge(DISABLED_ROLE_SESSIONS, target, violations.map((v) => ({ role: v.role.role, value: v.role.sessions })));
  },
  conditionOf: (roles, policy) => {
    const members = policy.disabledWhen.memberOf === undefined ? new Set<string>() : membersOf(roles, policy.disabledWhen.memberOf);
    return (role) => disabledCondition(role, policy.disabledWhen, members);
  },
};
