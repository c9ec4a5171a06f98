/**
 * `lock_blocker`: the root of a lock pile-up — a session that blocks others and waits on nobody —
 * once the oldest session it blocks (directly or through others) has waited longer than
 * maxBlocked, and only in the configured states (by default idle in a transaction: an active
 * root is doing work, and is acted on only when `active` is listed). A root that is a prepared
 * transaction (pid 0) cannot be signalled: it is still a violation (condition `prepared`, the gid
 * in the reason, no action), so that it is counted and alerted on (DESIGN.md).
 */
import { formatSeconds } from '../config/duration.js';
import { ConfigError } from '../errors.js';
import { SESSION_STATES, type PolicyCommon } from '../config/reader.js';
import { SESSION_KIND_NEEDS, type SessionKindModule } from './kind.js';
import type { Session, Snapshot } from '../db/snapshot.js';
import { finishPreparedFix } from '../db/fixes.js';
import { quoteIdent, quoteLiteral } from '../db/quote.js';
import { buildLockGraph, type LockRoot } from './lock-graph.js';
import { matches } from './match.js';
import { backendKey, type PolicyHistory, type SessionViolation } from './types.js';

export interface LockBlockerPolicy extends PolicyCommon {
  readonly kind: 'lock_blocker';
  readonly maxBlockedSeconds: number;
  readonly action: 'cancel' | 'terminate';
  /** States the root blocker must be in to be acted on (default: the two idle-in-transaction states). */
  readonly states: readonly string[];
}

export function lockBlocker(snapshot: Snapshot, policy: LockBlockerPolicy, history: PolicyHistory): SessionViolation[] {
  if (!snapshot.locks) return [];
  const graph = buildLockGraph(snapshot.sessions, snapshot.locks);
  const byPid = new Map(snapshot.sessions.map((s) => [s.pid, s]));
  const out: SessionViolation[] = [];
  for (const root of graph.roots) {
    if (root.pid === 0) {
      const prepared = preparedViolation(snapshot, policy, root);
      if (prepared) out.push(prepared);
      continue;
    }
    const session = byPid.get(root.pid);
    // A root hidden from pgwarden (no pg_read_all_stats) is still a violation, whose state cannot
    // be judged: the planner reports its action failed, saying why, rather than nothing at all.
    if (!session || (!session.hidden && session.backendType !== 'client backend')) continue;
    if (root.oldestWaitSeconds <= policy.maxBlockedSeconds) continue;
    if (!session.hidden && (session.state === null || !policy.states.includes(session.state))) continue;
    if (!matches(policy.match, session)) continue;
    // cancel only makes sense for a running query; a root cancelled before and still blocking is ended.
    const cancelledBefore = history.cancelled.has(backendKey(session));
    const action = policy.action === 'cancel' && session.state === 'active' && !cancelledBefore ? 'cancel' : 'terminate';
    out.push({
      target: snapshot.target,
      policy: policy.name,
      kind: policy.kind,
      session,
      seconds: root.oldestWaitSeconds,
      overSeconds: root.oldestWaitSeconds - policy.maxBlockedSeconds,
      reason:
        `blocks ${root.blocks} session(s) directly and ${root.blocksTotal} in all; the oldest has waited ` +
        `${formatSeconds(root.oldestWaitSeconds)}, over the limit of ${formatSeconds(policy.maxBlockedSeconds)} ` +
        (session.hidden ? '(root hidden from pgwarden: its state is unknown)' : `(root is ${session.state})`) +
        (cancelledBefore && policy.action === 'cancel' ? '; still blocking after a cancel: escalated to terminate' : ''),
      action,
      recheck: { states: policy.states, since: 'backend_start', thresholdSeconds: 0, stillBlocking: true },
    });
  }
  return out;
}

/**
 * The violation of a pile-up behind prepared transactions, once its oldest wait passes
 * maxBlocked and its owner and database are in the policy's `match` (states do not apply: a
 * prepared transaction has none). No action: no signal ends a prepared transaction, and
 * pg_terminate_backend(0) would be nonsense; what ends it is COMMIT or ROLLBACK PREPARED.
 */
function preparedViolation(snapshot: Snapshot, policy: LockBlockerPolicy, root: LockRoot): SessionViolation | null {
  const prepared = root.prepared ?? [];
  const first = prepared[0];
  if (!first || root.oldestWaitSeconds <= policy.maxBlockedSeconds) return null;
  const stand: Session = {
    pid: 0,
    role: first.owner,
    superuser: false,
    database: first.database,
    application: '',
    clientAddr: null,
    clientPort: null,
    state: null,
    backendType: 'prepared transaction',
    backendStart: null,
    backendStartUs: null,
    xactStart: null,
    queryStart: null,
    stateChange: null,
    stateSeconds: null,
    xactSeconds: first.ageSeconds,
    querySeconds: null,
    backendSeconds: null,
    waitEventType: null,
    waitEvent: null,
    query: null,
    hidden: false,
    signallable: false,
  };
  if (!matches(policy.match, { role: stand.role, database: stand.database })) return null;
  const which = prepared.map((p) => `${quoteLiteral(p.gid)} (database ${quoteIdent(p.database)}, owner ${quoteIdent(p.owner)}, prepared ${formatSeconds(p.ageSeconds)} ago)`);
  return {
    target: snapshot.target,
    policy: policy.name,
    kind: policy.kind,
    condition: 'prepared',
    session: stand,
    seconds: root.oldestWaitSeconds,
    overSeconds: root.oldestWaitSeconds - policy.maxBlockedSeconds,
    reason:
      `prepared transaction ${which.join(', ')} blocks ${root.blocks} session(s) directly and ${root.blocksTotal} in all; ` +
      `the oldest has waited ${formatSeconds(root.oldestWaitSeconds)}, over the limit of ${formatSeconds(policy.maxBlockedSeconds)}. ` +
      `No signal can end it: ${finishPreparedFix(first.gid, first.database)}`,
    action: null,
    recheck: { states: null, since: 'backend_start', thresholdSeconds: 0 },
  };
}

export const lockBlockerKind: SessionKindModule<LockBlockerPolicy> = {
  kind: 'lock_blocker',
  on: 'sessions',
  read: (item, common) => {
    // By default only idle transactions are ended: an active root is working, not forgotten.
    const states: unknown = item.raw('states') ?? ['idle in transaction', 'idle in transaction (aborted)'];
    if (!Array.isArray(states)) return item.fail('states', `must be a list of session states (${SESSION_STATES.join(', ')})`);
    states.forEach((s, i) => {
      if (!SESSION_STATES.includes(s as (typeof SESSION_STATES)[number])) {
        throw new ConfigError(`${item.key('states')}[${i}]: ${JSON.stringify(s)} is not a session state (${SESSION_STATES.join(', ')})`);
      }
    });
    return {
      ...common,
      kind: 'lock_blocker',
      maxBlockedSeconds: item.seconds('maxBlocked'),
      action: item.oneOf('action', ['cancel', 'terminate'], 'terminate'),
      states: states as string[],
    };
  },
  evaluate: lockBlocker,
  needsLocks: () => true,
  // a cancelled root still blocking is escalated to terminate
  actions: (policy) => (policy.action === 'cancel' ? ['cancel', 'terminate'] : ['terminate']),
  needs: () => SESSION_KIND_NEEDS,
  remembersCancels: true,
};
