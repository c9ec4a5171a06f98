/**
 * What policies produce. A policy is a pure function `(snapshot, policy, history) → Violation[]`:
 * it decides and never touches the database. Each violation carries the action the policy wants
 * and the condition the executor re-checks at kill time.
 */
import type { PolicyKind } from '../config/policies.js';
import type { RoleInfo, Session } from '../db/snapshot.js';

/** Which timestamp of pg_stat_activity a threshold is measured from. */
export type AgeColumn = 'state_change' | 'query_start' | 'xact_start' | 'backend_start';

/**
 * The condition a kill re-checks in the statement that kills: same pid and backend_start (the
 * snapshot's identity), still in one of `states` (null: any), still `thresholdSeconds` past
 * `since` by the server's clock.
 */
export interface Recheck {
  readonly states: readonly string[] | null;
  readonly since: AgeColumn;
  readonly thresholdSeconds: number;
  /** Also: it still blocks someone (a lock policy's onlyWhenBlocking). */
  readonly stillBlocking?: boolean;
  /**
   * Also: its group is still over `limit` client backends (the whole server, or its
   * role, database, application…). The kill statement counts the group
   * afresh and ends only as many of its backends, longest idle first, as bring it back to the
   * limit: sessions that closed on their own meanwhile spare as many others.
   */
  readonly overLimit?: { readonly per: ConnectionGroup; readonly limit: number };
}

/** How client backends are grouped when counted against a limit. */
export type ConnectionGroup = 'server' | 'role' | 'database' | 'application' | 'role_database';

export type SessionAction = 'terminate' | 'cancel';

/** One session that breaks one policy. */
export interface SessionViolation {
  readonly target: string;
  readonly policy: string;
  readonly kind: PolicyKind;
  readonly condition?: string;
  readonly session: Session;
  /** Age in the measured state, seconds. */
  readonly seconds: number;
  /** How far past the limit, seconds. */
  readonly overSeconds: number;
  readonly reason: string;
  /** What to do; null when nothing can be done (a pile-up whose root is a prepared transaction). */
  readonly action: SessionAction | null;
  readonly recheck: Recheck;
}

/** What the daemon remembers between runs of a policy on a target. */
export interface PolicyHistory {
  /** Backends this policy cancelled: key `pid:backendStartUs` → when (ms since epoch). */
  readonly cancelled: ReadonlyMap<string, number>;
  /** Now, in ms since epoch (injected: tests control the clock). */
  readonly now: number;
}

export const EMPTY_HISTORY: PolicyHistory = { cancelled: new Map(), now: 0 };

/** The identity of a backend: its pid and its start to the microsecond. */
export function backendKey(session: Pick<Session, 'pid' | 'backendStartUs'>): string {
  return `${session.pid}:${session.backendStartUs ?? ''}`;
}

/** The actions a role policy can ask for, in the fixed order they run. */
export type RoleActionKind = 'nologin' | 'terminate' | 'revoke_connect' | 'revoke_privileges';
export const ROLE_ACTION_ORDER: readonly RoleActionKind[] = ['nologin', 'terminate', 'revoke_connect', 'revoke_privileges'];

/** One role that breaks one role policy. */
export interface RoleViolation {
  readonly target: string;
  readonly policy: string;
  readonly kind: PolicyKind;
  /** The sub-case, as the kind names it: expiring, expired, no_expiry; nologin, expired, memberOf, listed. */
  readonly condition: string;
  readonly role: RoleInfo;
  readonly seconds?: number;
  readonly overSeconds?: number;
  readonly reason: string;
  /** What the policy wants done, in ROLE_ACTION_ORDER; empty: report only. */
  readonly actions: readonly RoleActionKind[];
}

/**
 * Role violations in role-name order (the byte order of PostgreSQL's `name`): the role snapshot
 * comes unordered, and what is shown must not depend on the catalog's physical order.
 */
export function sortByRole(violations: RoleViolation[]): RoleViolation[] {
  return violations.sort((a, b) => (a.role.role < b.role.role ? -1 : a.role.role > b.role.role ? 1 : 0));
}

