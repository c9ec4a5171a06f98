/** `idle_session`: state 'idle' longer than maxIdle → terminate. Idle connections hold server slots. */
import type { IdleSessionPolicy } from '../config/policies.js';
import type { Snapshot } from '../db/snapshot.js';
import { findSessionViolations } from './session-rule.js';
import type { PolicyHistory, SessionViolation } from './types.js';

export function idleSession(snapshot: Snapshot, policy: IdleSessionPolicy, _history: PolicyHistory): SessionViolation[] {
  return findSessionViolations(snapshot, policy, {
    states: ['idle'],
    since: 'state_change',
    limitSeconds: policy.maxIdleSeconds,
    describe: () => 'idle',
    action: () => ({ action: policy.action }),
  });
}
