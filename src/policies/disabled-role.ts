/**
 * `disabled_role`: which roles count as disabled. A role is disabled when any configured
 * condition holds; reserved pg_* roles and the marker role itself never are. The conditions are
 * PostgreSQL's own (NOLOGIN with sessions, an expired password, a marker membership, a list) or
 * a directory's (DESIGN.md `disabledWhen.directory`): disabled there, gone from it, or out of a
 * group — acted on only while the directory's answer is good (directory/watcher.ts) and never
 * when it would disable more of the covered roles at once than the circuit breaker allows.
 */
import { ConfigError } from '../errors.js';
import { compileGlobs } from '../config/glob.js';
import type { ItemReader, PolicyCommon } from '../config/reader.js';
import { formatSeconds } from '../config/duration.js';
import type { RoleGaugeSpec } from '../metrics/registry.js';
import { roleProtection } from '../actions/role-actions.js';
import { entryOf, isGroupFilter, verdictOf, type DirectoryAnswer, type DirectoryVerdict } from '../directory/answer.js';
import type { DirectoryView } from '../directory/watcher.js';
import { dnProblem, filterProblem } from '../config/directories.js';
import type { ConfigKnown, DirectoryUse, RoleEvaluation, RoleKindModule, RoleSources } from './kind.js';
import { membersOf, type RoleInfo, type RoleSnapshot } from '../db/snapshot.js';
import { roleMatcher } from './match.js';
import { sortByRole, type RoleViolation } from './types.js';

/** The actions a disabled_role policy may take, in the fixed order they run. */
export const DISABLED_ROLE_ACTIONS = ['nologin', 'terminate', 'revoke_connect', 'revoke_privileges'] as const;
export type DisabledRoleAction = (typeof DISABLED_ROLE_ACTIONS)[number];

/** `disabledWhen.directory`: which of a directory's verdicts disable a role. */
export interface DirectoryWhen {
  /** The directory's name (`directories[].name`). */
  readonly name: string;
  /** Its entry matches the directory's disabledFilter. */
  readonly disabled: boolean;
  /** No entry under userFilter holds the role's name. */
  readonly missing: boolean;
  /** Its entry is not a member of this group (a DN, or a filter for nested groups). */
  readonly notInGroup: string | undefined;
}

export interface DisabledWhen {
  readonly nologin: boolean;
  readonly expired: boolean;
  readonly memberOf: string | undefined;
  readonly roles: readonly string[];
  readonly directory: DirectoryWhen | undefined;
}

export interface DisabledRolePolicy extends PolicyCommon {
  readonly kind: 'disabled_role';
  readonly disabledWhen: DisabledWhen;
  /** In the fixed order nologin, terminate, revoke_connect, revoke_privileges. */
  readonly actions: readonly DisabledRoleAction[];
}

/** The sub-case that makes a role disabled (DESIGN.md `condition`). */
export type DisabledCondition = 'nologin' | 'expired' | 'memberOf' | 'listed' | DirectoryCondition;
export type DirectoryCondition = 'directory_disabled' | 'directory_missing' | 'directory_not_in_group';

/**
 * The first condition that holds for `role`, or null. `markerMembers` holds every role that
 * belongs to `when.memberOf`, directly or inherited (membersOf).
 */
export function disabledCondition(role: RoleInfo, when: DisabledWhen, markerMembers: ReadonlySet<string>): Exclude<DisabledCondition, DirectoryCondition> | null {
  if (role.role.startsWith('pg_') || role.role === when.memberOf) return null;
  if (when.roles.length > 0 && compileGlobs(when.roles)(role.role)) return 'listed';
  if (when.memberOf !== undefined && markerMembers.has(role.role)) return 'memberOf';
  // NOLOGIN does not end existing sessions: a NOLOGIN role is only a problem while it has some.
  if (when.nologin && !role.login && role.sessions > 0) return 'nologin';
  if (when.expired && role.validSeconds !== null && role.validSeconds < 0) return 'expired';
  return null;
}

const REASONS: Readonly<Record<Exclude<DisabledCondition, DirectoryCondition>, (role: RoleInfo, when: DisabledWhen) => string>> = {
  listed: () => 'listed in disabledWhen.roles',
  memberOf: (_r, when) => `member of ${when.memberOf ?? ''}`,
  nologin: (r) => `NOLOGIN but still has ${r.sessions} session${r.sessions > 1 ? 's' : ''} (ALTER ROLE NOLOGIN does not end existing sessions)`,
  expired: (r) =>
    Number.isFinite(r.validSeconds) ? `password expired ${Math.floor(-(r.validSeconds ?? 0) / 86_400)} days ago` : 'VALID UNTIL -infinity: password logins refused for good',
};

/**
 * The roles a directory judges: those its `roles` globs name that can log in, or still have
 * sessions (a lockout not finished). Group roles never log in: a directory never speaks for them.
 */
function judgedBy(view: DirectoryView): (role: RoleInfo) => boolean {
  const named = compileGlobs(view.roles);
  return (role) => (role.login || role.sessions > 0) && named(role.role);
}

/**
 * The directory condition that holds for `role` under `when` and `answer`, with its reason; or
 * null. Each condition the policy sets is tested on its own: a person both disabled and out of
 * the group is caught by a policy that asks only about the group.
 */
function directoryCondition(
  role: RoleInfo,
  when: DirectoryWhen,
  view: DirectoryView,
  answer: DirectoryAnswer,
  now: number,
): { condition: DirectoryCondition; reason: string } | null {
  const entry = entryOf(answer, role.role);
  const age = () => `answer ${formatSeconds(Math.max(0, Math.round((now - answer.searchedAt) / 1000)))} old`;
  if (!entry) {
    return when.missing ? { condition: 'directory_missing', reason: `directory ${when.name}: no entry under userFilter has ${view.roleAttribute}=${role.role} (${age()})` } : null;
  }
  if (when.disabled && entry.disabled) return { condition: 'directory_disabled', reason: `directory ${when.name}: ${entry.dn} matches disabledFilter (${age()})` };
  if (when.notInGroup !== undefined && !entry.groups.has(when.notInGroup)) {
    const group = isGroupFilter(when.notInGroup) ? `the group filter ${when.notInGroup}` : when.notInGroup;
    return { condition: 'directory_not_in_group', reason: `directory ${when.name}: ${entry.dn} is not a member of ${group} (${age()})` };
  }
  return null;
}

/**
 * The directory conditions of a policy over a snapshot: per role, the condition and reason —
 * or, when they would disable more of the *covered* roles (login roles the directory judges,
 * in the policy's scope, not exempt) than the circuit breaker allows, none and why.
 */
function directoryFindings(
  snapshot: RoleSnapshot,
  policy: DisabledRolePolicy,
  sources: RoleSources,
): { found: Map<string, { condition: DirectoryCondition; reason: string }>; use: DirectoryUse | undefined } {
  const found = new Map<string, { condition: DirectoryCondition; reason: string }>();
  const when = policy.disabledWhen.directory;
  if (when === undefined) return { found, use: undefined };
  const view = sources.directory(when.name);
  const answer = view.answer;
  if (answer === undefined) return { found, use: undefined };
  const judged = judgedBy(view);
  const inScope = roleMatcher(policy.match);
  let covered = 0;
  let coveredFlagged = 0;
  for (const role of snapshot.roles) {
    if (!judged(role) || !inScope(role.role) || role.role.startsWith('pg_')) continue;
    const finding = directoryCondition(role, when, view, answer, sources.now);
    if (finding) found.set(role.role, finding);
    if (role.login && roleProtection(role, sources.exempt, snapshot.self) === null) {
      covered += 1;
      if (finding) coveredFlagged += 1;
    }
  }
  const { maxFraction, minActions } = sources.safety;
  const why =
    coveredFlagged > minActions && coveredFlagged > maxFraction * covered
      ? `more than safety.maxFraction ${maxFraction} and safety.minActions ${minActions}`
      : // Every one of several: a wrong roleAttribute, baseDN or filter, not a whole team leaving at once.
        covered > 1 && coveredFlagged === covered
        ? 'every one of them: a wrong roleAttribute, baseDN or filter looks like this'
        : undefined;
  if (why !== undefined) {
    const refused = `on target ${snapshot.target}, policy ${policy.name} would disable ${coveredFlagged} of the ${covered} covered roles at once (${why})`;
    return { found: new Map(), use: { directory: when.name, answer, refused } };
  }
  return { found, use: { directory: when.name, answer } };
}

/** Disabled roles, one violation each, with the policy's actions in the fixed order. */
export function disabledRole(snapshot: RoleSnapshot, policy: DisabledRolePolicy, sources: RoleSources): RoleEvaluation {
  const markerMembers = policy.disabledWhen.memberOf === undefined ? new Set<string>() : membersOf(snapshot.roles, policy.disabledWhen.memberOf);
  const directory = directoryFindings(snapshot, policy, sources);
  const out: RoleViolation[] = [];
  const inScope = roleMatcher(policy.match);
  for (const role of snapshot.roles) {
    const condition = disabledCondition(role, policy.disabledWhen, markerMembers);
    const fromDirectory = condition === null ? directory.found.get(role.role) : undefined;
    if ((condition === null && fromDirectory === undefined) || !inScope(role.role)) continue;
    out.push({
      target: snapshot.target,
      policy: policy.name,
      kind: policy.kind,
      condition: condition ?? (fromDirectory?.condition as DirectoryCondition),
      role,
      reason: condition !== null ? REASONS[condition](role, policy.disabledWhen) : (fromDirectory?.reason ?? ''),
      actions: policy.actions,
    });
  }
  return { violations: sortByRole(out), directories: directory.use ? [directory.use] : [] };
}

function readDirectoryWhen(when: ItemReader, known: ConfigKnown): DirectoryWhen | undefined {
  const item = when.child('directory');
  if (!item) return undefined;
  const name = item.string('name');
  const directory = known.directories.get(name);
  if (directory === undefined) {
    const names = [...known.directories.keys()];
    return item.fail('name', `${JSON.stringify(name)} is not a configured directory (${names.length > 0 ? names.join(', ') : 'directories: is empty'})`);
  }
  const notInGroup = item.has('notInGroup') ? item.string('notInGroup') : (item.raw('notInGroup'), undefined);
  if (notInGroup !== undefined) {
    const problem = isGroupFilter(notInGroup) ? filterProblem(notInGroup) : dnProblem(notInGroup) && 'is neither a group DN (cn=db-users,ou=groups,…) nor an LDAP filter in parentheses';
    if (problem) item.fail('notInGroup', `${JSON.stringify(notInGroup)} ${problem}`);
  }
  const result: DirectoryWhen = { name, disabled: item.boolean('disabled', false), missing: item.boolean('missing', false), notInGroup };
  item.rejectUnknown();
  if (!result.disabled && !result.missing && notInGroup === undefined) item.fail('name', 'sets no condition: give at least one of disabled, missing, notInGroup');
  if (result.disabled && directory.disabledFilter === '') {
    item.fail('disabled', `directory ${JSON.stringify(name)} has no disabledFilter to tell who is disabled`);
  }
  return result;
}

function readDisabledWhen(item: ItemReader, known: ConfigKnown): DisabledWhen {
  const when = item.child('disabledWhen');
  if (!when) return item.fail('disabledWhen', 'is required: at least one of nologin, expired, memberOf, roles, directory');
  const memberOf = when.has('memberOf') ? when.string('memberOf') : (when.raw('memberOf'), undefined);
  const result: DisabledWhen = {
    nologin: when.boolean('nologin', false),
    expired: when.boolean('expired', false),
    memberOf,
    roles: when.globs('roles'),
    directory: readDirectoryWhen(when, known),
  };
  when.rejectUnknown();
  if (!result.nologin && !result.expired && !result.memberOf && result.roles.length === 0 && !result.directory) {
    item.fail('disabledWhen', 'sets no condition: give at least one of nologin, expired, memberOf, roles, directory');
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
  read: (item, common, known) => ({ ...common, kind: 'disabled_role', disabledWhen: readDisabledWhen(item, known), actions: readDisabledActions(item) }),
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
  conditionOf: (roles, policy, sources) => {
    const members = policy.disabledWhen.memberOf === undefined ? new Set<string>() : membersOf(roles, policy.disabledWhen.memberOf);
    const when = policy.disabledWhen.directory;
    const view = when ? sources.directory(when.name) : undefined;
    const judged = view ? judgedBy(view) : () => false;
    return (role) => {
      const own = disabledCondition(role, policy.disabledWhen, members);
      if (own !== null || !when || !view?.answer || !judged(role) || role.role.startsWith('pg_')) return own;
      return directoryCondition(role, when, view, view.answer, sources.now)?.condition ?? null;
    };
  },
  directoriesOf: (policy) => {
    const when = policy.disabledWhen.directory;
    return when ? [{ name: when.name, groups: when.notInGroup !== undefined ? [when.notInGroup] : [] }] : [];
  },
  directoryVerdictOf: (policy, sources) => {
    const when = policy.disabledWhen.directory;
    if (!when) return () => null;
    const view = sources.directory(when.name);
    const judged = judgedBy(view);
    return (role): DirectoryVerdict | null => {
      if (!judged(role)) return null;
      return view.answer ? verdictOf(view.answer, role.role, when.notInGroup) : 'unknown';
    };
  },
};
