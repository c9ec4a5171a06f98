/**
 * `connection_quota`: at most `max` client sessions per group (`per`: role, database,
 * application, or role and database); beyond it, the longest idle of that group are ended. Every
 * client backend of a group is counted (active ones too, and pgwarden's own); only the idle ones
 * the policy's `match` covers are ended. Groups under their quota are never touched.
 */
import type { PolicyCommon } from '../config/reader.js';
import { formatSeconds } from '../config/duration.js';
import { takesSlot, type Session, type Snapshot } from '../db/snapshot.js';
import { SESSION_KIND_NEEDS, type SessionKindModule, type SessionSources } from './kind.js';
import { cannotCount, idleCandidates, readIdleKeys, type IdleState } from './idle-candidates.js';
import type { ConnectionGroup, SessionViolation } from './types.js';

export type QuotaGroup = Exclude<ConnectionGroup, 'server'>;
export const QUOTA_GROUPS: readonly QuotaGroup[] = ['role', 'database', 'application', 'role_database'];

export interface ConnectionQuotaPolicy extends PolicyCommon {
  readonly kind: 'connection_quota';
  readonly per: QuotaGroup;
  readonly max: number;
  readonly minIdleSeconds: number;
  readonly states: readonly IdleState[];
  readonly action: 'terminate';
}

/** The group of a session (a key: names joined by NUL, which no name holds), or null when it has none. */
export function groupOf(session: Session, per: QuotaGroup): string | null {
  switch (per) {
    case 'role':
      return session.role;
    case 'database':
      return session.database;
    case 'application':
      return session.application;
    case 'role_database':
      return session.role === null || session.database === null ? null : `${session.role}\u0000${session.database}`;
  }
}

/** A group in words, for reasons: `role "app"`, `database "shop"`, `role "app" in database "shop"`. */
function groupText(session: Session, per: QuotaGroup): string {
  switch (per) {
    case 'role':
      return `role ${JSON.stringify(session.role)}`;
    case 'database':
      return `database ${JSON.stringify(session.database)}`;
    case 'application':
      return `application ${JSON.stringify(session.application)}`;
    case 'role_database':
      return `role ${JSON.stringify(session.role)} in database ${JSON.stringify(session.database)}`;
  }
}

/** Per group over its quota, its longest idle sessions beyond it. */
export function connectionQuota(snapshot: Snapshot, policy: ConnectionQuotaPolicy, sources: SessionSources): SessionViolation[] {
  if (cannotCount(snapshot) !== undefined) return [];
  const counts = new Map<string, number>();
  for (const s of snapshot.sessions) {
    if (!takesSlot(s)) continue;
    const group = groupOf(s, policy.per);
    if (group !== null) counts.set(group, (counts.get(group) ?? 0) + 1);
  }
  const taken = new Map<string, number>();
  const out: SessionViolation[] = [];
  // One re-check for the run: every kill of it counts its group against the same quota.
  const recheck = { states: policy.states, since: 'state_change', thresholdSeconds: policy.minIdleSeconds, overLimit: { per: policy.per, limit: policy.max } } as const;
  for (const session of idleCandidates(snapshot, policy, sources)) {
    const group = groupOf(session, policy.per);
    const count = group === null ? 0 : (counts.get(group) ?? 0);
    const already = group === null ? 0 : (taken.get(group) ?? 0);
    if (group === null || already >= count - policy.max) continue;
    taken.set(group, already + 1);
    const seconds = session.stateSeconds ?? 0;
    out.push({
      target: snapshot.target,
      policy: policy.name,
      kind: policy.kind,
      condition: 'quota',
      session,
      seconds,
      overSeconds: seconds - policy.minIdleSeconds,
      reason: `${groupText(session, policy.per)} has ${count} client sessions, over its quota of ${policy.max}: ${session.state ?? 'idle'} for ${formatSeconds(seconds)}, among its ${count - policy.max} longest idle`,
      action: 'terminate',
      recheck,
    });
  }
  return out;
}

export const connectionQuotaKind: SessionKindModule<ConnectionQuotaPolicy> = {
  kind: 'connection_quota',
  on: 'sessions',
  read: (item, common) => ({
    ...common,
    kind: 'connection_quota',
    per: item.oneOf('per', QUOTA_GROUPS, 'role'),
    max: item.positiveInt('max', 0) || item.fail('max', 'is required: the most client sessions a group may hold (a whole number of at least 1)'),
    ...readIdleKeys(item),
    action: item.oneOf('action', ['terminate'], 'terminate'),
  }),
  evaluate: (snapshot, policy, _history, sources) => connectionQuota(snapshot, policy, sources),
  needsLocks: () => false,
  actions: () => ['terminate'],
  needs: () => SESSION_KIND_NEEDS,
};
