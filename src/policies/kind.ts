/**
 * What a policy kind is: one module under src/policies/ exporting one of these, and one line in
 * registry.ts. The module holds the whole kind — its configuration keys (read and checked, each
 * error naming its key), the snapshots it needs, its pure evaluate, the actions it may plan, what
 * it needs of pgwarden's role, and the metrics it records — so that nothing outside
 * src/policies/ names a kind, and adding one is a file and a line (postgres_exporter's collector
 * per file is the model).
 */
import type { ItemReader, PolicyCommon } from '../config/reader.js';
import type { Metrics, PolicyGaugeSpec, RoleGaugeSpec } from '../metrics/registry.js';
import type { RoleInfo, RoleRows, RoleSnapshot, Session, Snapshot } from '../db/snapshot.js';
import type { DirectoryConfig } from '../config/directories.js';
import type { Exemptions } from '../actions/planner.js';
import type { DirectoryAnswer, DirectoryVerdict } from '../directory/answer.js';
import type { DirectoryView } from '../directory/watcher.js';
import type { PolicyHistory, RoleViolation, SessionViolation } from './types.js';

/** What a kind's reader may check a policy against: the other top-level lists of the configuration. */
export interface ConfigKnown {
  /** The configured directories, by name. */
  readonly directories: ReadonlyMap<string, DirectoryConfig>;
}

/** What a role kind judges with beside the role snapshot: the directories' answers, exemptions, the breaker's bounds. */
export interface RoleSources {
  /** The view of a configured directory now (watcher.ts). */
  directory(name: string): DirectoryView;
  /** The names of the configured directories. */
  readonly directories: readonly string[];
  readonly exempt: Exemptions;
  readonly safety: { readonly maxFraction: number; readonly minActions: number };
  /** Now, ms since epoch (an answer's age is measured from it). */
  readonly now: number;
}

/** What a session kind judges with beside the snapshot. */
export interface SessionSources {
  /**
   * Whether pgwarden may act on `session` at all (not its own, not exempt, not reserved): a kind
   * that chooses how many to end (the connection-limit kinds) chooses among these.
   */
  candidate(session: Session): boolean;
}

/** How a role policy run used a directory's answer: acted on it, or refused it (too many at once). */
export interface DirectoryUse {
  readonly directory: string;
  readonly answer: DirectoryAnswer;
  /** Set when the answer would disable more roles at once than the circuit breaker allows. */
  readonly refused?: string;
}

/** A role policy's judgement: its violations, and what it made of each directory answer it read. */
export interface RoleEvaluation {
  readonly violations: RoleViolation[];
  readonly directories: readonly DirectoryUse[];
}

/** A directory a policy asks, and the groups (`notInGroup`) it asks about. */
export interface DirectoryNeed {
  readonly name: string;
  readonly groups: readonly string[];
}

/** A compiled policy: the common keys, its kind, and the kind's own keys. */
export interface PolicyBase extends PolicyCommon {
  readonly kind: string;
}

/** What a policy needs pgwarden's role to be able to do (`pgwarden doctor`'s checks). */
export interface PolicyNeeds {
  /** Reads every session's state (pg_read_all_stats). */
  readonly readsSessions: boolean;
  /** Cancels or terminates other roles' backends (pg_signal_backend). */
  readonly signals: boolean;
  /** Alters roles: NOLOGIN (CREATEROLE; ADMIN OPTION on 16+). */
  readonly altersRoles: boolean;
  /** Revokes CONNECT on databases (as their owner). */
  readonly revokesConnect: boolean;
  /** Revokes privileges in every database (CONNECT everywhere, as each grantor). */
  readonly revokesPrivileges: boolean;
}

/** What every kind module has. */
interface KindModuleBase<P extends PolicyBase> {
  readonly kind: P['kind'];
  /**
   * Reads the kind's own keys (the common ones are read already), checking references to other
   * lists against `known`; throws ConfigError naming the key.
   */
  read(item: ItemReader, common: PolicyCommon, known: ConfigKnown): P;
  /** The actions a policy of this kind may take (its counters are created at 0 for each). */
  actions(policy: P): readonly string[];
  /** What it needs of pgwarden's role. */
  needs(policy: P): PolicyNeeds;
  /** Creates its per-policy series at start (beside the counters every policy has). */
  initMetrics?(metrics: Metrics, target: string, policy: P): void;
}

/** A kind judged on the session snapshot: its violations are sessions, its actions signals. */
export interface SessionKindModule<P extends PolicyBase> extends KindModuleBase<P> {
  readonly on: 'sessions';
  evaluate(snapshot: Snapshot, policy: P, history: PolicyHistory, sources: SessionSources): SessionViolation[];
  /** Whether the lock graph must be attached to the snapshot. */
  needsLocks(policy: P): boolean;
  /** Whether the engine must remember the backends it cancelled (for escalating to terminate). */
  readonly remembersCancels?: boolean;
  /** Its own per-policy gauges, created at start by the metrics registry. */
  readonly policyGauges?: readonly PolicyGaugeSpec[];
  /** Records its gauges from the snapshot a run judged. */
  record?(metrics: Metrics, target: string, policy: P, snapshot: Snapshot): void;
}

/** A kind judged on the role snapshot: its violations are roles, its actions role actions. */
export interface RoleKindModule<P extends PolicyBase> extends KindModuleBase<P> {
  readonly on: 'roles';
  evaluate(roles: RoleSnapshot, policy: P, sources: RoleSources): RoleEvaluation;
  /** The directories it asks (searched before `run --once` and `plan`, and by `doctor`). */
  directoriesOf?(policy: P): readonly DirectoryNeed[];
  /**
   * For `pgwarden roles`: what the directory this policy asks says about each role it judges
   * (null for a role it does not judge).
   */
  directoryVerdictOf?(policy: P, sources: RoleSources): (role: RoleInfo) => DirectoryVerdict | null;
  /** A membership that marks a role as flagged and must stay when its privileges are revoked. */
  keepMembershipIn?(policy: P): string | undefined;
  /** Its own per-role gauges (DESIGN.md's names), created at start by the metrics registry. */
  readonly roleGauges?: readonly RoleGaugeSpec[];
  /** Records its gauges from a run's violations. */
  record?(metrics: Metrics, target: string, policy: P, violations: readonly RoleViolation[]): void;
  /**
   * For `pgwarden roles`: the condition under which this policy flags each role, or null; built
   * once per snapshot (it may need the whole role list, e.g. for inherited memberships).
   */
  conditionOf?(roles: RoleRows, policy: P, sources: RoleSources): (role: RoleInfo) => string | null;
  /** For `pgwarden adduser`: whether this policy requires `role` to have a password expiry. */
  requiresExpiry?(policy: P, role: string): boolean;
}

export type KindModule<P extends PolicyBase> = SessionKindModule<P> | RoleKindModule<P>;

/** Session kinds that end sessions read and signal; role kinds say what they need themselves. */
export const SESSION_KIND_NEEDS: PolicyNeeds = { readsSessions: true, signals: true, altersRoles: false, revokesConnect: false, revokesPrivileges: false };
