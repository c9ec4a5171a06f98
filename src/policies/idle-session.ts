/** `idle_session`: state 'idle' longer than maxIdle → terminate. Idle connections hold server slots. */
import type { PolicyCommon } from '../config/reader.js';
import type { Snapshot } from '../db/snapshot.js';
import { SESSION_KIND_NEEDS, type SessionKindModule } from './kind.js';
import { findSessionViolations } from './session-rule.js';
import type { PolicyHistory, SessionViolation } from './types.js';

export interface IdleSessionPolicy extends PolicyCommon {
  readonly kind: 'idle_session';
  readonly maxIdleSeconds: number;
  readonly action: 'terminate';
}

export function idleSession(snapshot: Snapshot, policy: IdleSessionPolicy, _history: PolicyHistory): SessionViolation[] {
  return findSessionViolations(snapshot, policy, {
    states: ['idle'],
    since: 'state_change',
    limitSeconds: policy.maxIdleSeconds,
    describe: () => 'idle',
    action: () => ({ action: policy.action }),
  });
}

export const idleSessionKind: SessionKindModule<IdleSessionPolicy> = {
  kind: 'idle_session',
  on: 'sessions',
  read: (item, common) => ({ ...common, kind: 'idle_session', maxIdleSeconds: item.seconds('maxIdle'), action: item.oneOf('action', ['terminate'], 'terminate') }),
  evaluate: idleSession,
  needsLocks: () => false,
  actions: (policy) => [policy.action],
  needs: () => SESSION_KIND_NEEDS,
};
