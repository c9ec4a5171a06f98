/**
 * The policy kinds: one module each, one line here. Everything else asks this registry, never a
 * kind by name (DESIGN.md: adding a kind is one file and one registry line).
 */
import type { ItemReader, PolicyCommon } from '../config/reader.js';
import type { Metrics, PolicyGaugeSpec, RoleGaugeSpec } from '../metrics/registry.js';
import type { RoleInfo, RoleRows, RoleSnapshot, Snapshot } from '../db/snapshot.js';
import { connectionPressureKind, type ConnectionPressurePolicy } from './connection-pressure.js';
import { connectionQuotaKind, type ConnectionQuotaPolicy } from './connection-quota.js';
import { disabledRoleKind, type DisabledRolePolicy } from './disabled-role.js';
import { idleInTransactionKind, type IdleInTransactionPolicy } from './idle-in-transaction.js';
import { idleSessionKind, type IdleSessionPolicy } from './idle-session.js';
import type { ConfigKnown, DirectoryNeed, KindModule, PolicyNeeds, RoleEvaluation, RoleKindModule, RoleSources, SessionKindModule, SessionSources } from './kind.js';
import type { DirectoryVerdict } from '../directory/answer.js';
import { Directories, type DirectoryDeps } from '../directory/watcher.js';
import type { Config } from '../config/load.js';
import { lockBlockerKind, type LockBlockerPolicy } from './lock-blocker.js';
import { longQueryKind, type LongQueryPolicy } from './long-query.js';
import { longTransactionKind, type LongTransactionPolicy } from './long-transaction.js';
import { passwordExpiryKind, type PasswordExpiryPolicy } from './password-expiry.js';
import type { PolicyHistory, RoleViolation, SessionViolation } from './types.js';

/** Every compiled policy, of whatever kind. */
export type Policy =
  | IdleSessionPolicy
  | IdleInTransactionPolicy
  | LongQueryPolicy
  | LongTransactionPolicy
  | LockBlockerPolicy
  | PasswordExpiryPolicy
  | DisabledRolePolicy
  | ConnectionPressurePolicy
  | ConnectionQuotaPolicy;

export type PolicyKind = Policy['kind'];

/** kind → its module. */
const MODULES: { readonly [K in PolicyKind]: KindModule<Extract<Policy, { kind: K }>> } = {
  idle_session: idleSessionKind,
  idle_in_transaction: idleInTransactionKind,
  long_query: longQueryKind,
  long_transaction: longTransactionKind,
  lock_blocker: lockBlockerKind,
  password_expiry: passwordExpiryKind,
  disabled_role: disabledRoleKind,
  connection_pressure: connectionPressureKind,
  connection_quota: connectionQuotaKind,
};

/** The kind names, for the `kind` key. */
export const POLICY_KINDS = Object.keys(MODULES) as PolicyKind[];

/** The module of `policy`'s kind (typed loosely: the module and the policy always agree). */
function moduleOf(policy: Policy): KindModule<Policy> {
  return MODULES[policy.kind];
}

/** Reads the kind's own keys of a policy whose common keys are read (config/policies.ts). */
export function readPolicyKind(kind: PolicyKind, item: ItemReader, common: PolicyCommon, known: ConfigKnown): Policy {
  return (MODULES[kind] as KindModule<Policy>).read(item, common, known);
}

/** True for kinds judged on the role snapshot. */
export function isRolePolicy(policy: Policy): boolean {
  return moduleOf(policy).on === 'roles';
}

/** Evaluates a session policy on a snapshot. */
export function evaluateSessionPolicy(snapshot: Snapshot, policy: Policy, history: PolicyHistory, sources: SessionSources): SessionViolation[] {
  const module = moduleOf(policy);
  if (module.on !== 'sessions') throw new Error(`${policy.kind} is not a session policy`);
  return module.evaluate(snapshot, policy, history, sources);
}

/** Evaluates a role policy on a role snapshot, with the directories' answers and the safety bounds. */
export function evaluateRolePolicy(roles: RoleSnapshot, policy: Policy, sources: RoleSources): RoleEvaluation {
  const module = moduleOf(policy);
  if (module.on !== 'roles') throw new Error(`${policy.kind} is not a role policy`);
  return module.evaluate(roles, policy, sources);
}

/** The directories a policy asks, with the groups it asks about. */
export function directoriesOf(policy: Policy): readonly DirectoryNeed[] {
  const module = moduleOf(policy);
  return module.on === 'roles' ? (module.directoriesOf?.(policy) ?? []) : [];
}

/**
 * The directories `policies` ask, by name, each with the groups (`notInGroup`) asked of it — what
 * its search reads besides the people. A directory no policy asks is not there: never searched.
 */
export function askedDirectories(policies: readonly Policy[]): Map<string, string[]> {
  const asked = new Map<string, Set<string>>();
  for (const p of policies) {
    for (const d of directoriesOf(p)) {
      const groups = asked.get(d.name) ?? new Set<string>();
      for (const g of d.groups) groups.add(g);
      asked.set(d.name, groups);
    }
  }
  return new Map([...asked].map(([name, groups]) => [name, [...groups]]));
}

/** The watchers of the directories `config`'s policies ask (askedDirectories), not yet searched. */
export function directoriesAskedBy(config: Pick<Config, 'directories' | 'policies'>, deps: DirectoryDeps): Directories {
  const asked = askedDirectories(config.policies);
  return new Directories(
    config.directories.filter((d) => asked.has(d.name)),
    (name) => asked.get(name) ?? [],
    deps,
  );
}

/**
 * For `pgwarden roles`: per role, what the first policy asking a directory about it says
 * (`active`, `disabled`, `missing`, `not_in_group`, `unknown`), or null when none judges it.
 */
export function directoryVerdicts(policies: readonly Policy[], sources: RoleSources): (role: RoleInfo) => DirectoryVerdict | null {
  const tests = policies.flatMap((p) => {
    const module = moduleOf(p);
    return module.on === 'roles' && module.directoryVerdictOf ? [module.directoryVerdictOf(p, sources)] : [];
  });
  return (role) => {
    for (const test of tests) {
      const verdict = test(role);
      if (verdict !== null) return verdict;
    }
    return null;
  };
}

/** True for policies that need the lock graph attached to their snapshot. */
export function needsLocks(policy: Policy): boolean {
  const module = moduleOf(policy);
  return module.on === 'sessions' && module.needsLocks(policy);
}

/** True for policies whose cancels the engine remembers, to escalate to terminate. */
export function remembersCancels(policy: Policy): boolean {
  const module = moduleOf(policy);
  return module.on === 'sessions' && module.remembersCancels === true;
}

/** The actions a policy may take (its counters are created at 0 for each). */
export function actionsOf(policy: Policy): readonly string[] {
  return moduleOf(policy).actions(policy);
}

/** What a policy needs of pgwarden's role. */
export function needsOf(policy: Policy): PolicyNeeds {
  return moduleOf(policy).needs(policy);
}

/** Every kind's own per-role gauges, for the metrics registry to create at start. */
export function kindRoleGauges(): RoleGaugeSpec[] {
  return Object.values(MODULES).flatMap((m: KindModule<Policy>) => (m.on === 'roles' ? [...(m.roleGauges ?? [])] : []));
}

/** Every session kind's own per-policy gauges, for the metrics registry to create at start. */
export function kindPolicyGauges(): PolicyGaugeSpec[] {
  return Object.values(MODULES).flatMap((m: KindModule<Policy>) => (m.on === 'sessions' ? [...(m.policyGauges ?? [])] : []));
}

/** Records a session run's gauges, as the kind defines them. */
export function recordSessionPolicy(metrics: Metrics, target: string, policy: Policy, snapshot: Snapshot): void {
  const module = moduleOf(policy);
  if (module.on === 'sessions') module.record?.(metrics, target, policy, snapshot);
}

/** Creates the kind's own per-policy series at start. */
export function initPolicyMetrics(metrics: Metrics, target: string, policy: Policy): void {
  moduleOf(policy).initMetrics?.(metrics, target, policy);
}

/** Records a role run's gauges, as the kind defines them. */
export function recordRolePolicy(metrics: Metrics, target: string, policy: Policy, violations: readonly RoleViolation[]): void {
  const module = moduleOf(policy);
  if (module.on === 'roles') module.record?.(metrics, target, policy, violations);
}

/** The membership a role policy keeps when it revokes a flagged role's privileges. */
export function keptMembership(policy: Policy): string | undefined {
  const module = moduleOf(policy);
  return module.on === 'roles' ? module.keepMembershipIn?.(policy) : undefined;
}

/**
 * For `pgwarden roles`: per role, the first condition under which a configured policy flags it
 * (role kinds that say so), or null.
 */
export function roleConditions(policies: readonly Policy[], roles: RoleRows, sources: RoleSources): (role: RoleInfo) => string | null {
  const tests = policies.flatMap((p) => {
    const module = moduleOf(p) as SessionKindModule<Policy> | RoleKindModule<Policy>;
    return module.on === 'roles' && module.conditionOf ? [module.conditionOf(roles, p, sources)] : [];
  });
  return (role) => {
    for (const test of tests) {
      const condition = test(role);
      if (condition !== null) return condition;
    }
    return null;
  };
}

/** For `pgwarden adduser`: the first policy on `target` that requires `role` to have a password expiry. */
export function expiryRequiredBy(policies: readonly Policy[], role: string, target: string): string | undefined {
  return policies.find((p) => {
    const module = moduleOf(p);
    return module.on === 'roles' && (!p.targets || p.targets.includes(target)) && module.requiresExpiry?.(p, role) === true;
  })?.name;
}
