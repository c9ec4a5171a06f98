/**
 * Every metric of DESIGN.md, on one prom-client Registry (not the global one). Counters are
 * created at 0 for every policy, action and result at start, so `increase()` works from the
 * first event. Per-target gauges drop series that are no longer observed (a role or database gone).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Policy } from '../config/policies.js';
import { actionsOf, initPolicyMetrics, kindPolicyGauges, kindRoleGauges } from '../policies/registry.js';
import { isClientSession } from '../actions/planner.js';
import { ACTION_RESULTS, type ActionResult } from '../actions/types.js';
import { eachLoginExpiry, type RoleRows, type Session } from '../db/snapshot.js';
import type { LockSnapshot } from '../db/locks.js';
import { VERSION } from '../version.js';

type Labels = Record<string, string>;

/** Label value every role past the per-metric cap is folded into. */
export const OTHER_ROLE = '_other';

/**
 * A per-role gauge a policy kind owns (labels target and role): its name and help are the kind's,
 * declared in its module; the registry creates it at start whatever is configured.
 */
export interface RoleGaugeSpec {
  readonly name: string;
  readonly help: string;
}

/**
 * A per-policy gauge a policy kind owns (labels target, policy, and its own): declared in its
 * module, created by the registry at start.
 */
export interface PolicyGaugeSpec {
  readonly name: string;
  readonly help: string;
  /** Labels beyond target and policy. */
  readonly labels: readonly string[];
}

/** Options of the metrics (configuration `metrics.*`). */
export interface MetricsOptions {
  /** Extra labels of pgwarden_sessions: [] or ['application']. */
  readonly sessionLabels: readonly string[];
  /** Most roles with series of their own per metric and target. */
  readonly maxRoleSeries: number;
}

/**
 * The roles that keep series of their own: the first `max` by `rank` (most important first);
 * the rest are folded into `_other`.
 */
export function rolesToKeep<T extends { role: string }>(entries: readonly T[], max: number, rank: (a: T, b: T) => number): Set<string> {
  return new Set([...entries].sort(rank).slice(0, max).map((e) => e.role));
}

/** A role and the value of its series. */
interface Ranked {
  readonly role: string;
  readonly value: number;
}

/** Orders by value, then by role name: the order in which role series are kept. */
function byValueThenRole(a: Ranked, b: Ranked): number {
  return a.value - b.value || a.role.localeCompare(b.role);
}

/**
 * The `max` smallest of the (role, value) pairs offered one by one (ties by role name), and the
 * smallest value of the rest: a max-heap of `max` entries, so a role that does not make the cut
 * costs one comparison and no object. The role gauge ranks every role of every role snapshot
 * (100,000 of them): an entry object per role made up front outlived the young generation and
 * grew the old one on every snapshot (issue 19). Keeps what sorting every pair by (value, role) and
 * cutting at `max` keeps.
 */
export class SmallestByValue {
  readonly #max: number;
  /** A max-heap by byValueThenRole: the largest kept entry on top. */
  readonly #heap: Ranked[] = [];
  #offered = 0;
  #restMin = Infinity;

  constructor(max: number) {
    this.#max = Math.max(0, max);
  }

  offer(role: string, value: number): void {
    this.#offered += 1;
    const heap = this.#heap;
    if (heap.length < this.#max) {
      heap.push({ role, value });
      this.#up(heap.length - 1);
      return;
    }
    const top = heap[0];
    // Most roles are beaten by the top on value alone: no object, no name compared.
    if (top === undefined || value > top.value || (value === top.value && role.localeCompare(top.role) >= 0)) {
      if (value < this.#restMin) this.#restMin = value;
      return;
    }
    if (top.value < this.#restMin) this.#restMin = top.value;
    heap[0] = { role, value };
    this.#down(0);
  }

  /** The kept entries (in no order), how many were left out, and the smallest value left out (null: none). */
  result(): { keep: Ranked[]; rest: number; restMin: number | null } {
    const rest = this.#offered - this.#heap.length;
    return { keep: [...this.#heap], rest, restMin: rest > 0 ? this.#restMin : null };
  }

  #up(i: number): void {
    const heap = this.#heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (byValueThenRole(heap[i] as Ranked, heap[parent] as Ranked) <= 0) return;
      [heap[i], heap[parent]] = [heap[parent] as Ranked, heap[i] as Ranked];
      i = parent;
    }
  }

  #down(i: number): void {
    const heap = this.#heap;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let largest = i;
      if (left < heap.length && byValueThenRole(heap[left] as Ranked, heap[largest] as Ranked) > 0) largest = left;
      if (right < heap.length && byValueThenRole(heap[right] as Ranked, heap[largest] as Ranked) > 0) largest = right;
      if (largest === i) return;
      [heap[i], heap[largest]] = [heap[largest] as Ranked, heap[i] as Ranked];
      i = largest;
    }
  }
}

/** A gauge whose series for one target are replaced as a whole on each update. */
class TargetSeries {
  readonly #gauge: Gauge;
  /** Per target: the label sets set last time, by key (their values joined), target included. */
  readonly #seen = new Map<string, Map<string, Labels>>();

  constructor(gauge: Gauge) {
    this.#gauge = gauge;
  }

  /** Sets `values` (label sets with a value) for `target` and removes its series not in them. */
  replace(target: string, values: readonly { labels: Labels; value: number }[]): void {
    const previous = this.#seen.get(target) ?? new Map<string, Labels>();
    const current = new Map<string, Labels>();
    for (const { labels, value } of values) {
      // Label values joined by a byte that cannot occur in them: cheaper than JSON for 10,000 roles.
      const key = Object.values(labels).join('\u0000');
      // The label object of the series already there is reused: one object per series, not per update.
      const full = previous.get(key) ?? { target, ...labels };
      this.#gauge.set(full, value);
      current.set(key, full);
    }
    for (const [key, labels] of previous) if (!current.has(key)) this.#gauge.remove(labels);
    this.#seen.set(target, current);
  }
}

export class Metrics {
  readonly registry = new Registry();
  readonly up: Gauge;
  readonly sessions: Gauge;
  readonly sessionOldest: Gauge;
  readonly transactionOldest: Gauge;
  readonly sessionsHidden: Gauge;
  readonly violations: Gauge;
  readonly actions: Counter;
  readonly runDuration: Histogram;
  readonly lastSuccess: Gauge;
  readonly errors: Counter;
  readonly policyInfo: Gauge;
  readonly leader: Gauge;
  readonly buildInfo: Gauge;
  readonly roleValidUntil: Gauge;
  readonly rolesExpiring: Gauge;
  readonly #sessionSeries: TargetSeries;
  readonly #oldestSeries: TargetSeries;
  readonly #validUntilSeries: TargetSeries;
  /** The kinds' per-policy gauges, by name. */
  readonly #policyGauges = new Map<string, Gauge>();
  /** The kinds' per-role gauges, by name. */
  readonly #roleGauges = new Map<string, TargetSeries>();
  readonly #foldedSeries: TargetSeries;
  readonly roleSeriesFolded: Gauge;
  readonly blockedSessions: Gauge;
  readonly lockWaitOldest: Gauge;
  readonly preparedOldest: Gauge;
  readonly connections: Gauge;
  readonly connectionsUsable: Gauge;
  readonly directoryUp: Gauge;
  readonly directoryEntries: Gauge;
  readonly directoryLastSuccess: Gauge;
  readonly #blockedSeries: TargetSeries;
  readonly #lockWaitSeries: TargetSeries;
  readonly #preparedSeries: TargetSeries;
  readonly #options: MetricsOptions;

  constructor(options: MetricsOptions = { sessionLabels: [], maxRoleSeries: 1000 }) {
    this.#options = options;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.up = new Gauge({ name: 'pgwarden_up', help: 'Whether the last snapshot of the target succeeded (1) or not (0).', labelNames: ['target'], registers });
    this.sessions = new Gauge({
      name: 'pgwarden_sessions',
      help: 'Client sessions by database, role and state, from the last snapshot.',
      labelNames: ['target', 'database', 'role', 'state', ...options.sessionLabels],
      registers,
    });
    this.sessionOldest = new Gauge({
      name: 'pgwarden_session_oldest_seconds',
      help: 'Seconds the oldest client session has been in each state.',
      labelNames: ['target', 'state'],
      registers,
    });
    this.transactionOldest = new Gauge({
      name: 'pgwarden_transaction_oldest_seconds',
      help: 'Seconds the oldest open transaction of a client session has been open (0 when none).',
      labelNames: ['target'],
      registers,
    });
    this.sessionsHidden = new Gauge({
      name: 'pgwarden_sessions_hidden',
      help: "Client backends whose state pgwarden cannot read (its role lacks pg_read_all_stats and the backend's role privileges): policies cannot judge them.",
      labelNames: ['target'],
      registers,
    });
    this.violations = new Gauge({
      name: 'pgwarden_policy_violations',
      help: 'Violations found by the last run of each policy.',
      labelNames: ['target', 'policy', 'kind'],
      registers,
    });
    this.actions = new Counter({
      name: 'pgwarden_actions_total',
      help: 'Actions by policy, action and result (planned, done, gone, skipped, failed).',
      labelNames: ['target', 'policy', 'action', 'result'],
      registers,
    });
    this.runDuration = new Histogram({
      name: 'pgwarden_policy_run_duration_seconds',
      help: 'Duration of policy runs, snapshot included.',
      labelNames: ['target', 'policy'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.lastSuccess = new Gauge({
      name: 'pgwarden_policy_last_success_timestamp_seconds',
      help: 'Unix time of the last successful run of each policy.',
      labelNames: ['target', 'policy'],
      registers,
    });
    this.errors = new Counter({
      name: 'pgwarden_policy_errors_total',
      help: 'Policy runs that failed (snapshot or execution error).',
      labelNames: ['target', 'policy'],
      registers,
    });
    this.policyInfo = new Gauge({
      name: 'pgwarden_policy_info',
      help: 'One series per configured policy and target, with its kind and effective mode.',
      labelNames: ['target', 'policy', 'kind', 'mode'],
      registers,
    });
    this.leader = new Gauge({ name: 'pgwarden_leader', help: 'Whether this replica enforces policies on the target (1) or not (0).', labelNames: ['target'], registers });
    this.buildInfo = new Gauge({ name: 'pgwarden_build_info', help: 'pgwarden version and Node.js version.', labelNames: ['version', 'node'], registers });
    this.buildInfo.set({ version: VERSION, node: process.version }, 1);
    this.roleValidUntil = new Gauge({
      name: 'pgwarden_role_valid_until_seconds',
      help: 'Seconds until the password of each login role with a finite expiry expires (negative when past).',
      labelNames: ['target', 'role'],
      registers,
    });
    this.rolesExpiring = new Gauge({
      name: 'pgwarden_roles_expiring',
      help: 'Login roles whose password expires within the policy window or has expired.',
      labelNames: ['target', 'policy'],
      registers,
    });
    this.roleSeriesFolded = new Gauge({
      name: 'pgwarden_role_series_folded',
      help: 'Roles folded into role="_other" because a metric reached metrics.maxRoleSeries.',
      labelNames: ['target', 'metric'],
      registers,
    });
    this.#foldedSeries = new TargetSeries(this.roleSeriesFolded);
    this.blockedSessions = new Gauge({
      name: 'pgwarden_blocked_sessions',
      help: 'Client sessions waiting on a lock, per database.',
      labelNames: ['target', 'database'],
      registers,
    });
    this.lockWaitOldest = new Gauge({
      name: 'pgwarden_lock_wait_oldest_seconds',
      help: 'Longest current lock wait per database (pg_locks.waitstart when the lock graph was read, else the waiting query\'s age as an upper bound).',
      labelNames: ['target', 'database'],
      registers,
    });
    this.preparedOldest = new Gauge({
      name: 'pgwarden_prepared_xact_oldest_seconds',
      help: 'Age of the oldest prepared transaction per database (read with the lock graph).',
      labelNames: ['target', 'database'],
      registers,
    });
    this.connections = new Gauge({
      name: 'pgwarden_connections',
      help: "Client backends of the target (pgwarden's own and hidden ones included: each takes a connection slot).",
      labelNames: ['target'],
      registers,
    });
    this.connectionsUsable = new Gauge({
      name: 'pgwarden_connections_usable',
      help: 'Connection slots ordinary roles may take: max_connections minus superuser_reserved_connections and reserved_connections (16+).',
      labelNames: ['target'],
      registers,
    });
    this.directoryUp = new Gauge({
      name: 'pgwarden_directory_up',
      help: 'Whether the last search of the directory succeeded and its answer is in use (1) or not (0: it decides nothing).',
      labelNames: ['directory'],
      registers,
    });
    this.directoryEntries = new Gauge({
      name: 'pgwarden_directory_entries',
      help: 'Entries under userFilter found by the last good search of the directory.',
      labelNames: ['directory'],
      registers,
    });
    this.directoryLastSuccess = new Gauge({
      name: 'pgwarden_directory_last_success_timestamp_seconds',
      help: 'When the last good search of the directory finished (Unix seconds).',
      labelNames: ['directory'],
      registers,
    });
    this.#blockedSeries = new TargetSeries(this.blockedSessions);
    this.#lockWaitSeries = new TargetSeries(this.lockWaitOldest);
    this.#preparedSeries = new TargetSeries(this.preparedOldest);
    this.#validUntilSeries = new TargetSeries(this.roleValidUntil);
    for (const spec of kindPolicyGauges()) {
      this.#policyGauges.set(spec.name, new Gauge({ name: spec.name, help: spec.help, labelNames: ['target', 'policy', ...spec.labels], registers }));
    }
    for (const spec of kindRoleGauges()) {
      this.#roleGauges.set(spec.name, new TargetSeries(new Gauge({ name: spec.name, help: spec.help, labelNames: ['target', 'role'], registers })));
    }
    this.#sessionSeries = new TargetSeries(this.sessions);
    this.#oldestSeries = new TargetSeries(this.sessionOldest);
  }

  /** Creates every per-policy series at start: info 1, counters and violations at 0. */
  initPolicies(targets: readonly string[], policies: readonly Policy[], modeOf: (p: Policy) => string): void {
    for (const target of targets) {
      this.up.set({ target }, 0);
      for (const policy of policies) {
        if (policy.targets && !policy.targets.includes(target)) continue;
        const base = { target, policy: policy.name };
        this.policyInfo.set({ ...base, kind: policy.kind, mode: modeOf(policy) }, 1);
        this.violations.set({ ...base, kind: policy.kind }, 0);
        initPolicyMetrics(this, target, policy);
        this.errors.inc(base, 0);
        for (const action of actionsOf(policy)) {
          for (const result of ACTION_RESULTS) this.actions.inc({ ...base, action, result }, 0);
        }
      }
    }
  }

  /** Session gauges from one snapshot (client backends, pgwarden's own excluded). */
  recordSessions(target: string, sessions: readonly Session[], ownPids: ReadonlySet<number>): void {
    // One pass for what needs every client session; the series are built from the counts.
    const clients: Session[] = [];
    const perRole = new Map<string, number>();
    let oldestTransaction = 0;
    const waits: { database: string; seconds: number }[] = [];
    let hidden = 0;
    for (const s of sessions) {
      if (s.hidden) {
        hidden += 1;
        continue;
      }
      if (!isClientSession(s, ownPids)) continue;
      clients.push(s);
      const role = s.role ?? '';
      perRole.set(role, (perRole.get(role) ?? 0) + 1);
      if (s.xactSeconds !== null && s.xactSeconds > oldestTransaction) oldestTransaction = s.xactSeconds;
      // Lock waits as the snapshot alone shows them; recordLocks refines the ages when the graph is read.
      if (s.waitEventType === 'Lock') waits.push({ database: s.database ?? '', seconds: s.stateSeconds ?? 0 });
    }
    const keep = rolesToKeep(
      [...perRole].map(([role, count]) => ({ role, count })),
      this.#options.maxRoleSeries,
      (a, b) => b.count - a.count || a.role.localeCompare(b.role),
    );
    const withApplication = this.#options.sessionLabels.includes('application');
    const counts = new Map<string, { labels: Labels; value: number }>();
    const oldest = new Map<string, number>();
    this.transactionOldest.set({ target }, oldestTransaction);
    this.sessionsHidden.set({ target }, hidden);
    for (const s of clients) {
      const state = s.state ?? 'unknown';
      const role = keep.has(s.role ?? '') ? (s.role ?? '') : OTHER_ROLE;
      const database = s.database ?? '';
      const key = withApplication ? `${database}\u0000${role}\u0000${state}\u0000${s.application}` : `${database}\u0000${role}\u0000${state}`;
      const entry = counts.get(key);
      if (entry) entry.value += 1;
      else counts.set(key, { labels: { database, role, state, ...(withApplication ? { application: s.application } : {}) }, value: 1 });
      // A state changed after the query read the server's clock gives a hair below 0: counted as 0.
      const seconds = Math.max(0, s.stateSeconds ?? 0);
      if (seconds > (oldest.get(state) ?? -1)) oldest.set(state, seconds);
    }
    this.#sessionSeries.replace(target, [...counts.values()]);
    this.#oldestSeries.replace(
      target,
      [...oldest].map(([state, value]) => ({ labels: { state }, value })),
    );
    this.#setFolded(target, 'pgwarden_sessions', perRole.size - keep.size);
    this.#recordWaits(target, waits);
  }

  #recordWaits(target: string, waits: readonly { database: string; seconds: number }[]): void {
    const count = new Map<string, number>();
    const oldest = new Map<string, number>();
    for (const w of waits) {
      count.set(w.database, (count.get(w.database) ?? 0) + 1);
      oldest.set(w.database, Math.max(oldest.get(w.database) ?? 0, w.seconds));
    }
    this.#blockedSeries.replace(target, [...count].map(([database, value]) => ({ labels: { database }, value })));
    this.#lockWaitSeries.replace(target, [...oldest].map(([database, value]) => ({ labels: { database }, value })));
  }

  /** Lock gauges from the lock graph: exact wait ages, and the prepared transactions. */
  recordLocks(target: string, sessions: readonly Session[], locks: LockSnapshot): void {
    const byPid = new Map(sessions.map((s) => [s.pid, s]));
    this.#recordWaits(
      target,
      [...locks.waits.values()].map((w) => ({ database: byPid.get(w.pid)?.database ?? '', seconds: w.waitSeconds ?? 0 })),
    );
    const prepared = new Map<string, number>();
    for (const p of locks.prepared) prepared.set(p.database, Math.max(prepared.get(p.database) ?? 0, p.ageSeconds));
    this.#preparedSeries.replace(target, [...prepared].map(([database, value]) => ({ labels: { database }, value })));
  }

  readonly #folded = new Map<string, Map<string, number>>();

  #setFolded(target: string, metric: string, count: number): void {
    const perTarget = this.#folded.get(target) ?? new Map<string, number>();
    perTarget.set(metric, count);
    this.#folded.set(target, perTarget);
    this.#foldedSeries.replace(
      target,
      [...perTarget].map(([name, value]) => ({ labels: { metric: name }, value })),
    );
  }

  /**
   * Expiry gauges from one role snapshot: login roles with a finite expiry (infinity is no
   * series). Past the cap the soonest expiries keep their series; `_other` is the soonest of the rest.
   */
  recordRoles(target: string, roles: RoleRows): void {
    const smallest = new SmallestByValue(this.#options.maxRoleSeries);
    eachLoginExpiry(roles, (role, validSeconds) => smallest.offer(role, validSeconds));
    const { keep, rest, restMin } = smallest.result();
    const series = keep.map((r) => ({ labels: { role: r.role }, value: r.value }));
    if (restMin !== null) series.push({ labels: { role: OTHER_ROLE }, value: restMin });
    this.#validUntilSeries.replace(target, series);
    this.#setFolded(target, 'pgwarden_role_valid_until_seconds', rest);
  }

  /**
   * Sets a kind's per-role gauge for `target` to `values` (its series of roles not among them go):
   * past metrics.maxRoleSeries the largest values keep their series and `_other` sums the rest.
   * Throws when `spec` is no kind's (kindRoleGauges): a gauge nobody declared is a programming error.
   */
  recordRoleGauge(spec: RoleGaugeSpec, target: string, values: readonly { role: string; value: number }[]): void {
    const series = this.#roleGauges.get(spec.name);
    if (!series) throw new Error(`${spec.name} is not a role gauge of any policy kind`);
    const keep = rolesToKeep(values, this.#options.maxRoleSeries, (a, b) => b.value - a.value || a.role.localeCompare(b.role));
    const rest = values.filter((r) => !keep.has(r.role));
    series.replace(target, [
      ...values.filter((r) => keep.has(r.role)).map((r) => ({ labels: { role: r.role }, value: r.value })),
      ...(rest.length > 0 ? [{ labels: { role: OTHER_ROLE }, value: rest.reduce((sum, r) => sum + r.value, 0) }] : []),
    ]);
    this.#setFolded(target, spec.name, rest.length);
  }

  /** Sets a kind's per-policy gauge (kindPolicyGauges). Throws when `spec` is no kind's. */
  recordPolicyGauge(spec: PolicyGaugeSpec, labels: Readonly<Record<string, string>> & { target: string; policy: string }, value: number): void {
    const gauge = this.#policyGauges.get(spec.name);
    if (!gauge) throw new Error(`${spec.name} is not a policy gauge of any policy kind`);
    gauge.set(labels, value);
  }

  countAction(target: string, policy: string, action: string, result: ActionResult): void {
    this.actions.inc({ target, policy, action, result });
  }

  /** Counts a run's actions: one increment per action and result, not one per action (a run may plan hundreds). */
  countActions(target: string, policy: string, actions: readonly { readonly action: string; readonly result: ActionResult }[]): void {
    const counts = new Map<string, { action: string; result: ActionResult; n: number }>();
    for (const a of actions) {
      const key = `${a.action}\u0000${a.result}`;
      const entry = counts.get(key);
      if (entry) entry.n += 1;
      else counts.set(key, { action: a.action, result: a.result, n: 1 });
    }
    for (const { action, result, n } of counts.values()) this.actions.inc({ target, policy, action, result }, n);
  }

  /** The text of /metrics. */
  async render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
