/**
 * The shape the four session kinds share: client backends in scope, in some states, whose age
 * measured from one timestamp is past a limit. Each kind's file supplies the specifics.
 */
import type { Policy } from '../config/policies.js';
import { formatSeconds } from '../config/duration.js';
import type { Session, Snapshot } from '../db/snapshot.js';
import { matches } from './match.js';
import type { AgeColumn, SessionAction, SessionViolation } from './types.js';

export interface SessionRuleSpec {
  readonly states: readonly string[] | null;
  readonly since: AgeColumn;
  readonly limitSeconds: number;
  /** Words for the reason: "idle", "idle in transaction", "running a query", "in a transaction". */
  readonly describe: (session: Session) => string;
  readonly action: (session: Session) => { action: SessionAction; note?: string };
}

/** The session's age measured from `since`, by the server's clock. */
export function ageOf(session: Session, since: AgeColumn): number | null {
  switch (since) {
    case 'state_change':
      return session.stateSeconds;
    case 'query_start':
      return session.querySeconds;
    case 'xact_start':
      return session.xactSeconds;
    case 'backend_start':
      return session.backendSeconds === null ? null : Math.max(0, session.backendSeconds);
  }
}

/** Violations of a session policy in one snapshot, oldest first. */
export function findSessionViolations(snapshot: Snapshot, policy: Policy, spec: SessionRuleSpec): SessionViolation[] {
  const out: SessionViolation[] = [];
  for (const session of snapshot.sessions) {
    if (session.backendType !== 'client backend') continue;
    if (spec.states && (session.state === null || !spec.states.includes(session.state))) continue;
    const seconds = ageOf(session, spec.since);
    if (seconds === null || seconds <= spec.limitSeconds) continue;
    if (!matches(policy.match, session)) continue;
    const { action, note } = spec.action(session);
    out.push({
      target: snapshot.target,
      policy: policy.name,
      kind: policy.kind,
      session,
      seconds,
      overSeconds: seconds - spec.limitSeconds,
      reason: `${spec.describe(session)} for ${formatSeconds(seconds)}, over the limit of ${formatSeconds(spec.limitSeconds)}${note ? `; ${note}` : ''}`,
      action,
      recheck: { states: spec.states, since: spec.since, thresholdSeconds: spec.limitSeconds },
    });
  }
  return out.sort((a, b) => b.seconds - a.seconds);
}
