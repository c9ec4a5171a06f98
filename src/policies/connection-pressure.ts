/**
 * `connection_pressure`: when the client backends exceed `above` (of the usable slots, or a
 * number), end idle sessions, longest idle first, until they are at or below `target` — and only
 * then: an idle connection costs nothing while slots are free. The number to end is computed from
 * the snapshot; the kill statement counts again and ends only as many as are still needed.
 */
import type { PolicyCommon } from '../config/reader.js';
import { formatSeconds } from '../config/duration.js';
import { connectionsUsed, type Snapshot } from '../db/snapshot.js';
import type { PolicyGaugeSpec } from '../metrics/registry.js';
import { SESSION_KIND_NEEDS, type SessionKindModule, type SessionSources } from './kind.js';
import { cannotCount, idleCandidates, readIdleKeys, readSlotLimit, slotCount, slotText, type IdleState, type SlotLimit } from './idle-candidates.js';
import type { SessionViolation } from './types.js';

export interface ConnectionPressurePolicy extends PolicyCommon {
  readonly kind: 'connection_pressure';
  readonly above: SlotLimit;
  readonly target: SlotLimit;
  readonly minIdleSeconds: number;
  readonly states: readonly IdleState[];
  readonly action: 'terminate';
}

/** The sessions to end now, longest idle first, each with the server's count in its reason. */
export function connectionPressure(snapshot: Snapshot, policy: ConnectionPressurePolicy, sources: SessionSources): SessionViolation[] {
  if (cannotCount(snapshot) !== undefined) return [];
  const usable = snapshot.slots.usable;
  const used = connectionsUsed(snapshot.sessions);
  const above = slotCount(policy.above, usable);
  if (used <= above) return [];
  const target = Math.min(slotCount(policy.target, usable), above);
  const chosen = idleCandidates(snapshot, policy, sources).slice(0, used - target);
  // One re-check for the run: every kill of it counts the same group against the same limit.
  const recheck = { states: policy.states, since: 'state_change', thresholdSeconds: policy.minIdleSeconds, overLimit: { per: 'server', limit: target } } as const;
  return chosen.map((session) => {
    const seconds = session.stateSeconds ?? 0;
    return {
      target: snapshot.target,
      policy: policy.name,
      kind: policy.kind,
      condition: 'pressure',
      session,
      seconds,
      overSeconds: seconds - policy.minIdleSeconds,
      reason:
        `${used} of ${usable} usable connection slots taken, above ${slotText(policy.above)} (${above}): ` +
        `${session.state ?? 'idle'} for ${formatSeconds(seconds)}, among the ${used - target} longest idle to end to get back to ${slotText(policy.target)} (${target})`,
      action: 'terminate',
      recheck,
    } satisfies SessionViolation;
  });
}

/** The policy's `above` and `target` in client backends on a target, for the dashboard's lines. */
export const CONNECTION_LIMIT: PolicyGaugeSpec = {
  name: 'pgwarden_connection_limit',
  help: "A connection_pressure policy's above and target on the target, in client backends (bound=above|target).",
  labels: ['bound'],
};

export const connectionPressureKind: SessionKindModule<ConnectionPressurePolicy> = {
  kind: 'connection_pressure',
  on: 'sessions',
  read: (item, common) => {
    const above = readSlotLimit(item, 'above');
    const target = readSlotLimit(item, 'target');
    if ('percent' in above === 'percent' in target) {
      const [a, t] = 'percent' in above && 'percent' in target ? [above.percent, target.percent] : [(above as { count: number }).count, (target as { count: number }).count];
      if (t >= a) item.fail('target', `${slotText(target)} must be below above (${slotText(above)}): the sessions ended bring the server from above back down to target`);
    }
    return { ...common, kind: 'connection_pressure', above, target, ...readIdleKeys(item), action: item.oneOf('action', ['terminate'], 'terminate') };
  },
  evaluate: (snapshot, policy, _history, sources) => connectionPressure(snapshot, policy, sources),
  policyGauges: [CONNECTION_LIMIT],
  record: (metrics, target, policy, snapshot) => {
    const usable = snapshot.slots.usable;
    if (usable <= 0) return;
    const above = slotCount(policy.above, usable);
    metrics.recordPolicyGauge(CONNECTION_LIMIT, { target, policy: policy.name, bound: 'above' }, above);
    metrics.recordPolicyGauge(CONNECTION_LIMIT, { target, policy: policy.name, bound: 'target' }, Math.min(slotCount(policy.target, usable), above));
  },
  needsLocks: () => false,
  actions: () => ['terminate'],
  needs: () => SESSION_KIND_NEEDS,
};
