/**
 * The planner: applies the safety rules of DESIGN.md to a policy's violations and decides what
 * would be done. Pure: no I/O. The executor then does it (enforce) or nothing happens (dry-run).
 */
import { compileGlobs } from '../config/glob.js';
import type { Session } from '../db/snapshot.js';
import type { SessionViolation } from '../policies/types.js';
import { singleKillSql } from './kill-sql.js';
import type { SessionActionPlan } from './types.js';

/** What nothing may touch. */
export interface Exemptions {
  readonly superusers: boolean;
  readonly roles: readonly string[];
  readonly applications: readonly string[];
}

export interface SafetyLimits {
  readonly maxFraction: number;
  readonly minActions: number;
}

/** Why a session can never be acted on, or null when it may be. */
export function protectionOf(session: Session, exempt: Exemptions, ownPids: ReadonlySet<number>): string | null {
  if (session.backendType !== 'client backend') return 'not a client backend';
  // Known by pid: any client can call itself "pgwarden", so a name proves nothing.
  if (ownPids.has(session.pid)) return "pgwarden's own session";
  if (session.role === null) return 'no role';
  if (session.role.startsWith('pg_')) return 'reserved pg_* role';
  if (exempt.superusers && session.superuser) return 'superuser (exempt.superusers)';
  if (exempt.roles.length > 0 && compileGlobs(exempt.roles)(session.role)) return 'exempt role';
  if (exempt.applications.length > 0 && compileGlobs(exempt.applications)(session.application)) return 'exempt application';
  return null;
}

export interface SessionPlanInput {
  readonly violations: readonly SessionViolation[];
  readonly maxActionsPerRun: number;
  /** Client sessions on the target now (the circuit breaker's denominator). */
  readonly clientSessions: number;
  readonly exempt: Exemptions;
  readonly safety: SafetyLimits;
  readonly ownPids: ReadonlySet<number>;
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
 * (the rest `skipped`), and trips the circuit breaker when the run would act on too many.
 */
export function planSessionActions(input: SessionPlanInput): SessionPlan {
  const violations = input.violations
    .filter((v) => protectionOf(v.session, input.exempt, input.ownPids) === null)
    .sort((a, b) => b.seconds - a.seconds);
  const actions: SessionActionPlan[] = violations.map((violation, i) => ({
    violation,
    action: violation.action,
    sql: singleKillSql(violation.action, violation.session.pid, violation.session.backendStartUs, violation.recheck),
    result: i < input.maxActionsPerRun ? 'planned' : 'skipped',
    ...(i < input.maxActionsPerRun ? {} : { detail: `cap of ${input.maxActionsPerRun} actions per run reached` }),
  }));
  const planned = actions.filter((a) => a.result === 'planned');
  const fraction = input.clientSessions > 0 ? planned.length / input.clientSessions : 1;
  if (planned.length > input.safety.minActions && fraction > input.safety.maxFraction) {
    const breaker =
      `circuit breaker: the run would act on ${planned.length} of ${input.clientSessions} client sessions ` +
      `(${Math.round(fraction * 100)}% > ${Math.round(input.safety.maxFraction * 100)}%); acting on none`;
    for (const a of planned) {
      a.result = 'skipped';
      a.detail = breaker;
    }
    return { violations, actions, breaker };
  }
  return { violations, actions };
}

/** Client sessions a target has now, excluding pgwarden's own. */
export function countClientSessions(sessions: readonly Session[], ownPids: ReadonlySet<number>): number {
  return sessions.filter((s) => s.backendType === 'client backend' && !ownPids.has(s.pid)).length;
}

