/**
 * `lock_blocker`: the root of a lock pile-up — a session that blocks others and waits on nobody —
 * once the oldest session it blocks (directly or through others) has waited longer than
 * maxBlocked, and only in the configured states (by default idle in a transaction: an active
 * root is doing work, and is acted on only when `active` is listed). Prepared transactions (pid 0)
 * cannot be signalled and are left to `pgwarden locks` and the alert.
 */
import { formatSeconds } from '../config/duration.js';
import type { LockBlockerPolicy } from '../config/policies.js';
import type { Snapshot } from '../db/snapshot.js';
import { buildLockGraph } from './lock-graph.js';
import { matches } from './match.js';
import { backendKey, type PolicyHistory, type SessionViolation } from './types.js';

export function lockBlocker(snapshot: Snapshot, policy: LockBlockerPolicy, history: PolicyHistory): SessionViolation[] {
  if (!snapshot.locks) return [];
  const graph = buildLockGraph(snapshot.sessions, snapshot.locks);
  const byPid = new Map(snapshot.sessions.map((s) => [s.pid, s]));
  const out: SessionViolation[] = [];
  for (const root of graph.roots) {
    const session = byPid.get(root.pid);
    if (!session || session.backendType !== 'client backend') continue;
    if (root.oldestWaitSeconds <= policy.maxBlockedSeconds) continue;
    if (session.state === null || !policy.states.includes(session.state)) continue;
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
        `${formatSeconds(root.oldestWaitSeconds)}, over the limit of ${formatSeconds(policy.maxBlockedSeconds)} (root is ${session.state})` +
        (cancelledBefore && policy.action === 'cancel' ? '; still blocking after a cancel: escalated to terminate' : ''),
      action,
      recheck: { states: policy.states, since: 'backend_start', thresholdSeconds: 0, stillBlocking: true },
    });
  }
  return out;
}
