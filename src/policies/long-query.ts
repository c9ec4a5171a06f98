/**
 * `long_query`: an active query running longer than maxDuration → cancel (or terminate). With
 * escalateAfter, a backend this policy cancelled that long ago and still over the limit is
 * terminated: some queries ignore a cancel (stuck in a C function or on the network).
 */
import type { LongQueryPolicy } from '../config/policies.js';
import { formatSeconds } from '../config/duration.js';
import type { Snapshot } from '../db/snapshot.js';
import { findSessionViolations } from './session-rule.js';
import { backendKey, type PolicyHistory, type SessionViolation } from './types.js';

export function longQuery(snapshot: Snapshot, policy: LongQueryPolicy, history: PolicyHistory): SessionViolation[] {
  return findSessionViolations(snapshot, policy, {
    states: ['active'],
    since: 'query_start',
    limitSeconds: policy.maxDurationSeconds,
    describe: () => 'running a query',
    action: (session) => {
      if (policy.action !== 'cancel' || policy.escalateAfterSeconds === undefined) return { action: policy.action };
      const cancelledAt = history.cancelled.get(backendKey(session));
      if (cancelledAt !== undefined && history.now - cancelledAt >= policy.escalateAfterSeconds * 1000) {
        return {
          action: 'terminate',
          note: `still running ${formatSeconds((history.now - cancelledAt) / 1000)} after it was cancelled: escalated to terminate`,
        };
      }
      return { action: 'cancel' };
    },
  });
}
