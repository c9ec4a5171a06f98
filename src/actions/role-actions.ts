/**
 * Role actions: planning (pure) and execution (I/O) of nologin, terminate and revoke_connect for
 * the roles a role policy flagged — and for `logout`. Actions always run in the fixed order
 * NOLOGIN, terminate, revoke: a session ended first could otherwise reconnect in between.
 * Each is idempotent and planned only when it would change something.
 */
import type pg from 'pg';
import { compileGlobs } from '../config/glob.js';
import type { TargetDb } from '../db/pool.js';
import { errorCode, errorReason, serverMessage, SQLSTATE } from '../db/pg-errors.js';
import { connectPaths } from '../db/roles.js';
import { runStatement } from '../db/transaction.js';
import { stillExists } from '../db/databases.js';
import { restoreSql, revokeSql, type Grant } from '../db/grants.js';
import type { Session } from '../db/snapshot.js';
import { ROLE_ACTION_ORDER, type RoleActionKind, type RoleViolation } from '../policies/types.js';
import { signalEach } from './executor.js';
import { singleKillSql, TERMINATE_RECHECK } from '../db/kill-backends.js';
import { grantConnectSql, holdsExplicitConnect, revokeConnectSql } from '../db/lock-database.js';
import { loginSql, nologinSql } from '../db/role-ddl.js';
import { breakerVerdict, forActing, isClientSession, limitPlans, protectionOf, reservedRole, unactionable, type Acting, type Exemptions, type SafetyLimits, type SelfRoles } from './planner.js';
import type { ActionJson, ActionResult, ViolationJson } from './types.js';

/** Actions only manual commands take: locking a database, and offboarding's steps. */
export type ManualActionKind = 'lock_database' | 'reassign_owned' | 'drop_owned' | 'drop_role';

/** One action on a role (or one of its sessions, or one database). */
export interface RoleActionPlan {
  readonly target: string;
  readonly policy: string;
  readonly action: RoleActionKind | ManualActionKind;
  readonly role: string;
  readonly session?: Session;
  readonly database?: string;
  readonly sql: string;
  /** The SQL that undoes the action, for the audit log. */
  readonly restore?: string;
  /** revoke_privileges: the ACL item revoked, and the grants the role handed on that cascade with it. */
  readonly grant?: Grant;
  readonly cascades?: readonly Grant[];
  result: ActionResult;
  effective?: boolean;
  detail?: string;
}

export interface RolePlanInput {
  readonly violations: readonly RoleViolation[];
  /** Every session of the target now (client backends are picked from it). */
  readonly sessions: readonly Session[];
  /** Databases each flagged role can connect to now. */
  readonly connectable: ReadonlyMap<string, readonly string[]>;
  readonly maxActionsPerRun: number;
  readonly exempt: Exemptions;
  readonly safety: SafetyLimits;
  readonly ownPids: ReadonlySet<number>;
  /** The roles pgwarden is on the target: never candidates. */
  readonly self: SelfRoles;
  /** Login roles on the target (the breaker's denominator for NOLOGIN). */
  readonly loginRoles: number;
  /** role/database pairs whose revoke was already reported ineffective: not planned again. */
  readonly knownIneffective?: ReadonlySet<string>;
  /** For revoke_privileges: the grants each flagged role holds or handed on, in every database. */
  readonly grants?: ReadonlyMap<string, readonly Grant[]>;
  /** The marker role of disabledWhen.memberOf: membership in it is the "disabled" flag and stays. */
  readonly keepMembershipIn?: string;
  /** Why pgwarden's role may not alter a role (fetchAlterRefusals), asked of the NOLOGINs a plan without it left planned. */
  readonly refusals?: ReadonlyMap<string, string | null>;
  /** The run's mode and leadership; absent: plans only (nothing skipped for leadership). */
  readonly acting?: Acting;
}

/** Roles and superusers no policy may touch. */
export function roleProtection(role: { role: string; superuser: boolean }, exempt: Exemptions, self: SelfRoles): string | null {
  const reserved = reservedRole(role.role, self);
  if (reserved !== null) return reserved;
  if (exempt.superusers && role.superuser) return 'superuser (exempt.superusers)';
  if (exempt.roles.length > 0 && compileGlobs(exempt.roles)(role.role)) return 'exempt role';
  return null;
}

/** The client sessions of `role` (hidden ones too: they are its sessions), never pgwarden's own. */
export function sessionsOf(role: string, sessions: readonly Session[], ownPids: ReadonlySet<number>, database?: string): Session[] {
  return sessions.filter((s) => s.role === role && isClientSession(s, ownPids) && (database === undefined || s.database === database));
}

/**
 * A terminate action for one session of a role, re-checked by pid and backend_start; `failed`
 * from the start when pgwarden cannot end it (hidden from it, or not its to signal).
 */
export function terminatePlan(target: string, policy: string, session: Session): RoleActionPlan {
  const refused = unactionable(session);
  return {
    target,
    policy,
    action: 'terminate',
    role: session.role ?? '',
    session,
    database: session.database ?? undefined,
    sql: singleKillSql('terminate', session.pid, session.backendStartUs, TERMINATE_RECHECK),
    ...(refused === null ? { result: 'planned' as const } : { result: 'failed' as const, detail: refused }),
  };
}

/** What decides which sessions of which roles a lockout ends. */
export interface TerminationInput {
  readonly target: string;
  readonly policy: string;
  /** The roles whose sessions are ended; absent: every role's (logout --database). */
  readonly roles?: ReadonlySet<string>;
  /** Only sessions in this database (logout --database). */
  readonly database?: string;
  readonly exempt: Exemptions;
  readonly ownPids: ReadonlySet<number>;
  readonly self: SelfRoles;
}

/**
 * The terminations of `input.roles`' client sessions in `sessions` (pure): protected sessions
 * (exempt applications, pgwarden's own pids) left out, a reserved role's said and `skipped`,
 * those pgwarden cannot end `failed`.
 */
export function planTerminations(input: TerminationInput, sessions: readonly Session[]): RoleActionPlan[] {
  const out: RoleActionPlan[] = [];
  for (const s of sessions) {
    if (s.role === null || !isClientSession(s, input.ownPids)) continue;
    if (input.roles !== undefined && !input.roles.has(s.role)) continue;
    if (input.database !== undefined && s.database !== input.database) continue;
    // Session-level safety too: exempt applications are never touched by any policy.
    const protection = protectionOf(s, input.exempt, input.ownPids, input.self);
    if (protection === null) out.push(terminatePlan(input.target, input.policy, s));
    else if (reservedRole(s.role, input.self) !== null) {
      out.push({ ...terminatePlan(input.target, input.policy, s), result: 'skipped', detail: `${protection}: pgwarden never acts on it` });
    }
  }
  return out;
}

export function nologinPlan(target: string, policy: string, role: string): RoleActionPlan {
  return { target, policy, action: 'nologin', role, sql: nologinSql(role), restore: loginSql(role), result: 'planned' };
}

export function revokeConnectPlan(target: string, policy: string, role: string, database: string): RoleActionPlan {
  return { target, policy, action: 'revoke_connect', role, database, sql: revokeConnectSql(database, role), result: 'planned' };
}

/**
 * One REVOKE per ACL item the role holds, made as its grantor, with the GRANT that restores it;
 * grants the role handed on (they cascade away) ride on the revoke of the same object.
 */
export function revokePrivilegePlans(target: string, policy: string, role: string, grants: readonly Grant[]): RoleActionPlan[] {
  const given = grants.filter((g) => g.grantor === role && g.grantee !== role);
  return grants
    .filter((g) => g.grantee === role)
    .map((grant) => ({
      target,
      policy,
      action: 'revoke_privileges' as const,
      role,
      ...(grant.database !== null ? { database: grant.database } : {}),
      sql: revokeSql(grant),
      restore: restoreSql(grant),
      grant,
      cascades: given.filter((g) => g.object === grant.object && g.database === grant.database),
      result: 'planned' as const,
    }));
}

/** What a role policy run plans. */
export interface RolePlan {
  /** Violations of roles the policy may act on. */
  readonly violations: RoleViolation[];
  readonly actions: RoleActionPlan[];
  /** Set when the circuit breaker tripped. */
  readonly breaker?: string;
  /** Flagged roles no policy ever acts on (pgwarden's own, the bootstrap superuser, pg_*): said, then skipped. */
  readonly reserved: { role: string; reason: string }[];
}

/** Plans what each flagged role needs, in the fixed order, under the cap and the circuit breaker. */
export function planRoleActions(input: RolePlanInput): RolePlan {
  const reserved: { role: string; reason: string }[] = [];
  for (const v of input.violations) {
    const reason = reservedRole(v.role.role, input.self);
    if (reason !== null) reserved.push({ role: v.role.role, reason });
  }
  const violations = input.violations.filter((v) => roleProtection(v.role, input.exempt, input.self) === null);
  const byKind = new Map<RoleActionKind | ManualActionKind, RoleActionPlan[]>(ROLE_ACTION_ORDER.map((k) => [k, []]));
  const ending = new Set<string>();
  for (const v of violations) {
    const name = v.role.role;
    for (const kind of v.actions) {
      const list = byKind.get(kind) as RoleActionPlan[];
      if (kind === 'nologin' && v.role.login) list.push(nologinPlan(v.target, v.policy, name));
      if (kind === 'terminate') ending.add(name);
      if (kind === 'revoke_connect') {
        for (const database of input.connectable.get(name) ?? []) {
          if (!input.knownIneffective?.has(`${name}/${database}`)) list.push(revokeConnectPlan(v.target, v.policy, name, database));
        }
      }
      if (kind === 'revoke_privileges') {
        const grants = (input.grants?.get(name) ?? []).filter((g) => g.membership?.group === undefined || g.membership.group !== input.keepMembershipIn);
        list.push(...revokePrivilegePlans(v.target, v.policy, name, grants));
      }
    }
  }
  const first = violations[0];
  if (first && ending.size > 0) {
    const terminations = planTerminations({ target: first.target, policy: first.policy, roles: ending, exempt: input.exempt, ownPids: input.ownPids, self: input.self }, input.sessions);
    // Shown in role order, as the violations are.
    const order = new Map(violations.map((v, i) => [v.role.role, i]));
    (byKind.get('terminate') as RoleActionPlan[]).push(...terminations.sort((a, b) => (order.get(a.role) ?? 0) - (order.get(b.role) ?? 0)));
  }
  const limited = limitPlans(
    ROLE_ACTION_ORDER.flatMap((k) => byKind.get(k) as RoleActionPlan[]),
    input.maxActionsPerRun,
    input.maxActionsPerRun,
    (capped) => tripBreaker(capped, input),
  );
  // What pgwarden's role may not alter is failed from the plan on, and the rest of that role held back.
  const refused = input.refusals ? refuseUnalterable(limited.plans, input.refusals).plans : limited.plans;
  return { violations, actions: forActing(refused, input.acting), reserved, ...(limited.breaker ? { breaker: limited.breaker } : {}) };
}

/** The roles of `violations` whose sessions the policy ends (what a re-read after the lockout re-plans). */
export function rolesToEnd(violations: readonly RoleViolation[]): Set<string> {
  return new Set(violations.filter((v) => v.actions.includes('terminate')).map((v) => v.role.role));
}

function tripBreaker(actions: readonly RoleActionPlan[], input: RolePlanInput): string | undefined {
  const count = (kind: RoleActionKind) => actions.filter((a) => a.action === kind && a.result === 'planned').length;
  let clientSessions = 0;
  for (const s of input.sessions) if (isClientSession(s, input.ownPids)) clientSessions += 1;
  return (
    breakerVerdict(count('nologin'), input.loginRoles, 'login roles', input.safety) ??
    breakerVerdict(count('terminate'), clientSessions, 'client sessions', input.safety)
  );
}

/**
 * Marks each planned NOLOGIN that pgwarden's role may not make `failed` (`refusals`, from
 * fetchAlterRefusals), then holds back every other planned action of a role whose NOLOGIN failed:
 * pure, so that `plan` says what `run` would do. Returns the roles held back.
 */
export function refuseUnalterable(plans: readonly RoleActionPlan[], refusals: ReadonlyMap<string, string | null>): { plans: RoleActionPlan[]; heldBack: Set<string> } {
  const refused = plans.map((p) => {
    const why = refusals.get(p.role);
    return p.action === 'nologin' && p.result === 'planned' && why ? { ...p, result: 'failed' as const, detail: `cannot alter the role: ${why} (see pgwarden doctor)` } : p;
  });
  const held = holdBackUnlocked(refused);
  return { plans: held.plans, heldBack: held.unlocked };
}

/**
 * A role whose NOLOGIN failed could log straight back in: its other planned actions are
 * `skipped`, so nothing is done to it half-way. Returns those roles.
 */
export function holdBackUnlocked(plans: readonly RoleActionPlan[]): { plans: RoleActionPlan[]; unlocked: Set<string> } {
  const unlocked = new Set(plans.filter((p) => p.action === 'nologin' && p.result === 'failed').map((p) => p.role));
  return {
    plans: plans.map((p) =>
      p.result === 'planned' && p.action !== 'nologin' && unlocked.has(p.role)
        ? { ...p, result: 'skipped' as const, detail: 'NOLOGIN failed for this role: not acting further so it cannot reconnect in between' }
        : p,
    ),
    unlocked,
  };
}

/** Runs a utility statement with a lock_timeout: DDL must give up rather than queue others behind it. */
export async function runDdl(db: TargetDb, sql: string, lockTimeoutMs: number): Promise<void> {
  await db.withClient((client) => runDdlOn(client, sql, lockTimeoutMs));
}

/** The same on a given client (another database): DDL with its lock_timeout local to its transaction. */
export async function runDdlOn(client: pg.ClientBase, sql: string, lockTimeoutMs: number): Promise<void> {
  await runStatement(client, sql, { lockTimeoutMs });
}

/**
 * How a failed statement ends up: `gone` when its target vanished meanwhile (a database dropped
 * between listing and revoking), else `failed`.
 */
export function failureOf(err: unknown): { result: 'gone' | 'failed'; detail: string } {
  if (errorCode(err) === SQLSTATE.invalidCatalogName) return { result: 'gone', detail: `it no longer exists: ${errorReason(err)}` };
  return { result: 'failed', detail: serverMessage(err) };
}

/**
 * The same for a statement on `database`: a database dropped while we worked on it (which can
 * surface as "does not exist" or as an internal "tuple concurrently deleted") is `gone`.
 */
export async function failureIn(db: TargetDb, database: string, err: unknown): Promise<{ result: 'gone' | 'failed'; detail: string }> {
  const outcome = failureOf(err);
  if (outcome.result === 'gone') return outcome;
  const exists = await stillExists(db, database, err).catch(() => true);
  return exists ? outcome : { result: 'gone', detail: `the database was dropped meanwhile (${outcome.detail})` };
}

/** Planned NOLOGIN and DDL-like actions, one statement each with a lock_timeout; sets results. */
export async function runDdlPlans(db: TargetDb, plans: readonly RoleActionPlan[], lockTimeoutMs: number): Promise<void> {
  for (const plan of plans.filter((p) => p.result === 'planned')) {
    try {
      await runDdl(db, plan.sql, lockTimeoutMs);
      plan.result = 'done';
    } catch (err) {
      plan.result = 'failed';
      plan.detail = errorReason(err);
    }
  }
}

/** Planned terminations, all in one re-checking statement; sets results. */
export async function terminateSessions(db: TargetDb, plans: readonly RoleActionPlan[]): Promise<void> {
  const kills = plans.filter((p) => p.result === 'planned' && p.session);
  const outcomes = await signalEach(
    db,
    kills.map((p) => ({ pid: (p.session as Session).pid, backendStartUs: (p.session as Session).backendStartUs, action: 'terminate' as const })),
    TERMINATE_RECHECK,
  );
  kills.forEach((plan, i) => Object.assign(plan, outcomes[i]));
}

/** How a role run ends the sessions of the roles it locked out. */
export interface RoleExecution {
  readonly lockTimeoutMs: number;
  /**
   * The roles whose sessions the run ends, and how: after their lockout committed, read afresh
   * (lockout.ts endSessionsAfterLock), returning the terminate actions with their results. Called
   * once, after NOLOGIN and REVOKE CONNECT, with the roles whose NOLOGIN did not fail and the
   * actions so far with their results. Absent:
   * the planned terminations are done as planned.
   */
  readonly endSessions?: { readonly roles: ReadonlySet<string>; readonly end: (roles: ReadonlySet<string>, done: readonly RoleActionPlan[]) => Promise<RoleActionPlan[]> };
}

/**
 * Does every `planned` action and returns the actions with their results, in the fixed order.
 * The locks go first — NOLOGIN, then REVOKE CONNECT — so that the sessions are read after they
 * commit and nobody gets back in between; then the sessions end, then privileges are revoked.
 * Never throws.
 */
export async function executeRoleActions(db: TargetDb, planned: readonly RoleActionPlan[], execution: RoleExecution): Promise<RoleActionPlan[]> {
  const { lockTimeoutMs } = execution;
  // The outcomes are new objects, filled in step by step: the plans handed in stay as planned.
  let plans = planned.map((p) => ({ ...p }));
  const due = (kind: RoleActionKind | ManualActionKind) => plans.filter((p) => p.action === kind && p.result === 'planned');
  await runDdlPlans(db, due('nologin'), lockTimeoutMs);
  // A role whose NOLOGIN failed could log straight back in: leave its sessions and grants alone.
  const held = holdBackUnlocked(plans);
  plans = held.plans;
  const unlocked = held.unlocked;
  await revokeConnects(db, due('revoke_connect'), lockTimeoutMs);
  let terminations = plans.filter((p) => p.action === 'terminate');
  if (execution.endSessions) {
    // The terminations planned from the earlier snapshot are replaced by those of a fresh read.
    const ending = new Set([...execution.endSessions.roles].filter((r) => !unlocked.has(r)));
    let fresh: RoleActionPlan[] = [];
    try {
      if (ending.size > 0) fresh = await execution.endSessions.end(ending, plans);
    } catch (err) {
      // The locks are done and stay on record; the sessions could not be read to end them.
      fresh = terminations.filter((p) => ending.has(p.role));
      for (const p of fresh) {
        if (p.result === 'planned') Object.assign(p, { result: 'failed', detail: `could not read the sessions after the lock: ${errorReason(err)}` });
      }
    }
    terminations = [...terminations.filter((p) => !ending.has(p.role)), ...fresh];
  } else await terminateSessions(db, due('terminate'));
  await revokePrivileges(db, due('revoke_privileges'), lockTimeoutMs);
  return ROLE_ACTION_ORDER.flatMap((kind) => (kind === 'terminate' ? terminations : plans.filter((p) => p.action === kind)));
}

/** Planned REVOKE CONNECTs, each checked afterwards for paths that still let the role in. */
async function revokeConnects(db: TargetDb, plans: readonly RoleActionPlan[], lockTimeoutMs: number): Promise<void> {
  for (const plan of plans) {
    const database = plan.database as string;
    try {
      const explicit = await holdsExplicitConnect(db, database, plan.role);
      await runDdl(db, plan.sql, lockTimeoutMs);
      plan.result = 'done';
      if (explicit) Object.assign(plan, { restore: grantConnectSql(database, plan.role) });
      const paths = await connectPaths(db, plan.role, database);
      if (paths.length > 0) {
        plan.effective = false;
        plan.detail =
          `CONNECT on ${JSON.stringify(database)} still reaches ${JSON.stringify(plan.role)} through ${paths.join(', ')}: ` +
          `the revoke does not lock it out (revoke CONNECT from those, and grant it to the roles that need it)`;
      } else plan.effective = true;
    } catch (err) {
      Object.assign(plan, await failureIn(db, database, err));
    }
  }
}

/**
 * Runs planned revokes: shared ones on the pool, the rest in their database (one connection
 * each), one statement each; a REVOKE that revoked nothing fails (runDdlOn). Sets results; never throws.
 */
export async function revokePrivileges(db: TargetDb, plans: readonly RoleActionPlan[], lockTimeoutMs: number): Promise<void> {
  const byDatabase = new Map<string | undefined, RoleActionPlan[]>();
  for (const p of plans) byDatabase.set(p.database, [...(byDatabase.get(p.database) ?? []), p]);
  for (const [database, list] of byDatabase) {
    let client: pg.Client | undefined;
    try {
      if (database !== undefined) client = await db.connectTo(database);
      for (const plan of list) {
        try {
          if (client) await runDdlOn(client, plan.sql, lockTimeoutMs);
          else await runDdl(db, plan.sql, lockTimeoutMs);
          plan.result = 'done';
        } catch (err) {
          Object.assign(plan, failureOf(err));
        }
      }
    } catch (err) {
      const outcome = database === undefined ? failureOf(err) : await failureIn(db, database, err);
      for (const plan of list) Object.assign(plan, outcome);
    } finally {
      await client?.end().catch(() => undefined);
    }
  }
}

export function roleActionJson(a: RoleActionPlan): ActionJson {
  return {
    target: a.target,
    policy: a.policy,
    action: a.action,
    role: a.role,
    ...(a.session ? { pid: a.session.pid } : {}),
    ...(a.database !== undefined ? { database: a.database } : {}),
    sql: a.sql,
    result: a.result,
    ...(a.effective !== undefined ? { effective: a.effective } : {}),
    ...(a.detail !== undefined ? { detail: a.detail } : {}),
  };
}

export function roleViolationJson(v: RoleViolation): ViolationJson {
  return {
    target: v.target,
    policy: v.policy,
    kind: v.kind,
    condition: v.condition,
    role: v.role.role,
    ...(v.seconds !== undefined ? { seconds: Math.round(v.seconds) } : {}),
    ...(v.overSeconds !== undefined ? { overSeconds: Math.round(v.overSeconds) } : {}),
    reason: v.reason,
  };
}
