/**
 * `long_transaction`: a transaction open longer than maxDuration, in any state → terminate.
 * A long transaction holds back vacuum's xmin horizon for the whole cluster.
 */
import type { LongTransactionPolicy } from '../config/policies.js';
import type { Snapshot } from '../db/snapshot.js';
import { findSessionViolations } from './session-rule.js';
import type { PolicyHistory, SessionViolation } from './types.js';

export function longTransaction(snapshot: Snapshot, policy: LongTransactionPolicy, _history: PolicyHistory): SessionViolation[] {
  return findSessionViolations(snapshot, policy, {
    states: null,
    since: 'xact_start',
    limitSeconds: policy.maxDurationSeconds,
    describe: (s) => `in a transaction (now ${s.state ?? 'unknown'})`,
    action: () => ({ action: policy.action }),
  });
}
