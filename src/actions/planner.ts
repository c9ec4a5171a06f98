/**
 * The planner: applies the safety rules of DESIGN.md to a policy's violations and decides what
 * would be done. Pure: no I/O. The executor then does it (enforce) or nothing happens (dry-run).
 */
import type { Mode } from '../config/reader.js';
import { compileGlobs } from '../config/glob.js';
import { takesSlot, type Identity, type Session } from '../db/snapshot.js';
import type { SessionViolation } from '../policies/types.js';
import { singleKillSql } from '../db/kill-backends.js';
import type { ActionResult, SessionActionPlan } from './types.js';

/** What nothing may touch. */
export interface Exemptions {
  readonly superusers: boolean;
  readonly roles: readonly string[];
  readonly applications: readonly string[];
}

/** Manual commands take no policy exemptions: only what no command ever touches is protected. */
export const NO_EXEMPTIONS: Exemptions = Object.freeze({ superusers: false, roles: [], applications: [] });

export interface SafetyLimits {
  readonly maxFraction: number;
  readonly minActions: number;
}

/** Who pgwarden is, as far as protection goes: the roles it never acts on. */
export type SelfRoles = Pick<Identity, 'role' | 'currentRole' | 'bootstrapRole'>;

/**
 * Why no policy or command may ever act on `role`, whatever the configuration, or null: the
 * reserved pg_* roles, the role pgwarden is connected as (it would lock itself out, or end a
 * replica's connections), and the bootstrap superuser (oid 10: the cluster's owner, and on
 * managed services the provider's own role).
 */
export function reservedRole(role: string, self: SelfRoles): string | null {
  if (role.startsWith('pg_')) return 'reserved pg_* role';
  if (role === self.role || role === self.currentRole) return 'the role pgwarden is connected as';
  if (role === self.bootstrapRole) return 'the bootstrap superuser';
  return null;
}

/** Why a session can never be acted on, or null when it may be. */
export function protectionOf(session: Session, exempt: Exemptions, ownPids: ReadonlySet<number>, self: SelfRoles): string | null {
  // Known by pid: any client can call itself "pgwarden", so a name proves nothing.
  if (ownPids.has(session.pid)) return "pgwarden's own session";
  if (session.role === null) return 'no role';
  const reserved = reservedRole(session.role, self);
  if (reserved !== null) return reserved;
  // A hidden backend has no type to read: a candidate that cannot be acted on (unactionable says why).
  if (!session.hidden && session.backendType !== 'client backend') return 'not a client backend';
  if (exempt.superusers && session.superuser) return 'superuser (exempt.superusers)';
  if (exempt.roles.length > 0 && compileGlobs(exempt.roles)(session.role)) return 'exempt role';
  if (exempt.applications.length > 0 && compileGlobs(exempt.applications)(session.application)) return 'exempt application';
  return null;
}

/**
 * Why pgwarden cannot end or cancel `session` although it should, or null when it can: the
 * server hides the backend from pgwarden's role (nothing to re-check it against, so it is never
 * signalled), or would refuse the signal (Session.signallable, decided as the server decides).
 * Such an action is `failed` from the plan on, in every mode: pgwarden cannot do its job there.
 */
export function unactionable(session: Session): string | null {
  if (session.hidden) {
    return "hidden: pgwarden's role cannot read this backend's state (it lacks pg_read_all_stats), so it cannot re-check it and does not end it; see pgwarden doctor";
  }
  if (session.signallable) return null;
  // Not signallable although a superuser may signal anything: pgwarden is not one.
  if (session.superuser) return "cannot be signalled: a superuser's backend, and only a superuser may signal it";
  return `cannot be signalled: pgwarden's role has neither pg_signal_backend nor the privileges of ${JSON.stringify(session.role ?? '')}; see pgwarden doctor`;
}

export interface SessionPlanInput {
  readonly violations: readonly SessionViolation[];
  readonly maxActionsPerRun: number;
  /** Client sessions on the target now (the circuit breaker's denominator). */
  readonly clientSessions: number;
  readonly exempt: Exemptions;
  readonly safety: SafetyLimits;
  readonly ownPids: ReadonlySet<number>;
  /** pgwarden on the target (from the same snapshot as the violations). */
  readonly self: SelfRoles;
  /** The run's mode and leadership; absent: plans only (nothing skipped for leadership). */
  readonly acting?: Acting;
}

export interface SessionPlan {
  /** Violations of sessions the policy may act on, oldest first. */
  readonly violations: SessionViolation[];
  readonly actions: SessionActionPlan[];
  /** Set when the circuit breaker tripped. */
  readonly breaker?: string;
}

/**
 * Drops protected sessions, orders the rest oldest first, plans one action each up to the cap
 * (the rest `skipped`; those pgwarden cannot signal `failed`), and trips the circuit breaker when
 * the run would act on too many.
 */
export function planSessionActions(input: SessionPlanInput): SessionPlan {
  // A violation with no action (a prepared transaction at a pile-up's root) is reported as is.
  const violations = input.violations
    .filter((v) => v.action === null || protectionOf(v.session, input.exempt, input.ownPids, input.self) === null)
    .sort((a, b) => b.seconds - a.seconds);
  const actions: SessionActionPlan[] = [];
  for (const violation of violations) {
    const action = violation.action;
    if (action === null) continue;
    const sql = singleKillSql(action, violation.session.pid, violation.session.backendStartUs, violation.recheck);
    const refused = unactionable(violation.session);
    actions.push(refused !== null ? { violation, action, sql, result: 'failed', detail: refused } : { violation, action, sql, result: 'planned' });
  }
  const limited = limitPlans(actions, input.maxActionsPerRun, input.maxActionsPerRun, (capped) =>
    breakerVerdict(capped.filter((a) => a.result === 'planned').length, input.clientSessions, 'client sessions', input.safety),
  );
  return { violations, actions: forActing(limited.plans, input.acting), ...(limited.breaker ? { breaker: limited.breaker } : {}) };
}

/**
 * The one cap and circuit breaker of every plan (sessions, roles, a lockout's re-read), pure: in
 * order, planned actions past `room` become `skipped` ("cap of `cap` actions per run reached");
 * then `breaker` is asked about what is still planned, and when it trips every one still planned
 * becomes `skipped` with its reason, which is returned too. New plan objects; the input is not touched.
 */
export function limitPlans<T extends { readonly result: ActionResult; readonly detail?: string }>(
  plans: readonly T[],
  room: number,
  cap: number,
  breaker: (capped: readonly T[]) => string | undefined,
): { plans: T[]; breaker?: string } {
  let planned = 0;
  const capped = plans.map((a) => {
    if (a.result !== 'planned') return a;
    if (planned >= room) return { ...a, result: 'skipped' as const, detail: `cap of ${cap} actions per run reached` };
    planned += 1;
    return a;
  });
  const tripped = breaker(capped);
  if (!tripped) return { plans: capped };
  return { plans: skipPlanned(capped, tripped), breaker: tripped };
}

/** Every `planned` one of `plans` as `skipped` with `detail`: new objects for those, the rest as they are. */
export function skipPlanned<T extends { readonly result: ActionResult; readonly detail?: string }>(plans: readonly T[], detail: string): T[] {
  return plans.map((a) => (a.result === 'planned' ? { ...a, result: 'skipped' as const, detail } : a));
}

/**
 * Whether a run acts, as the planner is told it: the policy's mode, and whether this replica
 * leads the target. Only `enforce` on a led target acts (DESIGN.md, leadership).
 */
export interface Acting {
  readonly mode: Mode;
  readonly leads: boolean;
}

/** The run executes what it planned. */
export function acts(acting: Acting | undefined): boolean {
  return acting !== undefined && acting.mode === 'enforce' && acting.leads;
}

/**
 * The final plans of a run in `acting`: in enforce mode on a target another replica leads, what
 * was planned is `skipped` with the reason; in dry-run it stays `planned` (what would be done).
 */
export function forActing<T extends { readonly result: ActionResult; readonly detail?: string }>(plans: readonly T[], acting: Acting | undefined): T[] {
  return acting?.mode === 'enforce' && !acting.leads ? skipPlanned(plans, 'another replica leads') : [...plans];
}

/**
 * The circuit breaker (DESIGN.md, Safety rules): acting on `count` of `of` `what` in one run
 * trips it when the count is above minActions and the fraction above maxFraction. Returns the
 * reason when it trips.
 */
export function breakerVerdict(count: number, of: number, what: string, safety: SafetyLimits): string | undefined {
  const fraction = of > 0 ? count / of : 1;
  if (count <= safety.minActions || fraction <= safety.maxFraction) return undefined;
  return `circuit breaker: the run would act on ${count} of ${of} ${what} (${Math.round(fraction * 100)}% > ${Math.round(safety.maxFraction * 100)}%); acting on none`;
}

/** Whether a snapshot row is a client session (hidden ones count: they take slots too), not pgwarden's own. */
export function isClientSession(s: Session, ownPids: ReadonlySet<number>): boolean {
  return takesSlot(s) && !ownPids.has(s.pid);
}

/** Client sessions a target has now (hidden ones included), excluding pgwarden's own. */
export function countClientSessions(sessions: readonly Session[], ownPids: ReadonlySet<number>): number {
  let count = 0;
  for (const s of sessions) if (isClientSession(s, ownPids)) count += 1;
  return count;
}

