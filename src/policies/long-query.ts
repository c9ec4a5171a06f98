/**
 * `long_query`: an active query running longer than maxDuration → cancel (or terminate). With
 * escalateAfter, a backend this policy cancelled that long ago and still over the limit is
 * terminated: some queries ignore a cancel (stuck in a C function or on the network).
 */
import type { PolicyCommon } from '../config/reader.js';
import { formatSeconds } from '../config/duration.js';
import { SESSION_KIND_NEEDS, type SessionKindModule } from './kind.js';
import type { Snapshot } from '../db/snapshot.js';
import { findSessionViolations } from './session-rule.js';
import { backendKey, type PolicyHistory, type SessionViolation } from './types.js';

export interface LongQueryPolicy extends PolicyCommon {
  readonly kind: 'long_query';
  readonly maxDurationSeconds: number;
  readonly action: 'cancel' | 'terminate';
  /** A backend cancelled this long ago and still over the limit is terminated. */
  readonly escalateAfterSeconds: number | undefined;
}

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

export const longQueryKind: SessionKindModule<LongQueryPolicy> = {
  kind: 'long_query',
  on: 'sessions',
  read: (item, common) => {
    const policy: LongQueryPolicy = {
      ...common,
      kind: 'long_query',
      maxDurationSeconds: item.seconds('maxDuration'),
      action: item.oneOf('action', ['cancel', 'terminate'], 'cancel'),
      escalateAfterSeconds: item.optionalSeconds('escalateAfter'),
    };
    if (policy.escalateAfterSeconds !== undefined && policy.action !== 'cancel') item.fail('escalateAfter', 'only makes sense with action: cancel');
    return policy;
  },
  evaluate: longQuery,
  needsLocks: () => false,
  // a cancelled query still running after escalateAfter is terminated
  actions: (policy) => (policy.action === 'cancel' ? ['cancel', 'terminate'] : ['terminate']),
  needs: () => SESSION_KIND_NEEDS,
  remembersCancels: true,
};
