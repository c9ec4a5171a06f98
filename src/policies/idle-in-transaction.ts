/**
 * `idle_in_transaction`: 'idle in transaction' or '(aborted)' longer than maxIdle → terminate.
 * Such sessions hold their locks and hold back vacuum's horizon while doing nothing.
 */
import type { PolicyCommon } from '../config/reader.js';
import { SESSION_KIND_NEEDS, type SessionKindModule } from './kind.js';
import type { Snapshot } from '../db/snapshot.js';
import { blockingPids } from './lock-graph.js';
import { findSessionViolations } from './session-rule.js';
import type { PolicyHistory, SessionViolation } from './types.js';

export interface IdleInTransactionPolicy extends PolicyCommon {
  readonly kind: 'idle_in_transaction';
  readonly maxIdleSeconds: number;
  readonly action: 'terminate';
  /** Only sessions that block someone (needs the lock graph). */
  readonly onlyWhenBlocking: boolean;
}

export function idleInTransaction(snapshot: Snapshot, policy: IdleInTransactionPolicy, _history: PolicyHistory): SessionViolation[] {
  const violations = findSessionViolations(snapshot, policy, {
    states: ['idle in transaction', 'idle in transaction (aborted)'],
    since: 'state_change',
    limitSeconds: policy.maxIdleSeconds,
    describe: (s) => s.state ?? 'idle in transaction',
    action: () => ({ action: policy.action }),
  });
  if (!policy.onlyWhenBlocking) return violations;
  // onlyWhenBlocking: an idle transaction that blocks nobody is left alone, and the kill re-checks it still blocks.
  const blocking = snapshot.locks ? blockingPids(snapshot.locks) : new Set<number>();
  return violations
    .filter((v) => blocking.has(v.session.pid))
    .map((v) => ({ ...v, reason: `${v.reason}; it blocks other sessions`, recheck: { ...v.recheck, stillBlocking: true } }));
}

export const idleInTransactionKind: SessionKindModule<IdleInTransactionPolicy> = {
  kind: 'idle_in_transaction',
  on: 'sessions',
  read: (item, common) => ({
    ...common,
    kind: 'idle_in_transaction',
    maxIdleSeconds: item.seconds('maxIdle'),
    action: item.oneOf('action', ['terminate'], 'terminate'),
    onlyWhenBlocking: item.boolean('onlyWhenBlocking', false),
  }),
  evaluate: idleInTransaction,
  needsLocks: (policy) => policy.onlyWhenBlocking,
  actions: (policy) => [policy.action],
  needs: () => SESSION_KIND_NEEDS,
};
