/**
 * `long_transaction`: a transaction open longer than maxDuration, in any state → terminate.
 * A long transaction holds back vacuum's xmin horizon for the whole cluster.
 */
import type { PolicyCommon } from '../config/reader.js';
import type { Snapshot } from '../db/snapshot.js';
import { SESSION_KIND_NEEDS, type SessionKindModule } from './kind.js';
import { findSessionViolations } from './session-rule.js';
import type { PolicyHistory, SessionViolation } from './types.js';

export interface LongTransactionPolicy extends PolicyCommon {
  readonly kind: 'long_transaction';
  readonly maxDurationSeconds: number;
  readonly action: 'terminate';
}

export function longTransaction(snapshot: Snapshot, policy: LongTransactionPolicy, _history: PolicyHistory): SessionViolation[] {
  return findSessionViolations(snapshot, policy, {
    states: null,
    since: 'xact_start',
    limitSeconds: policy.maxDurationSeconds,
    describe: (s) => `in a transaction (now ${s.state ?? 'unknown'})`,
    action: () => ({ action: policy.action }),
  });
}

export const longTransactionKind: SessionKindModule<LongTransactionPolicy> = {
  kind: 'long_transaction',
  on: 'sessions',
  read: (item, common) => ({ ...common, kind: 'long_transaction', maxDurationSeconds: item.seconds('maxDuration'), action: item.oneOf('action', ['terminate'], 'terminate') }),
  evaluate: longTransaction,
  needsLocks: () => false,
  actions: (policy) => [policy.action],
  needs: () => SESSION_KIND_NEEDS,
};
