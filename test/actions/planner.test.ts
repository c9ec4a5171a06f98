import { describe, expect, it } from 'vitest';
import { planSessionActions, protectionOf } from '../../src/actions/planner.js';
import type { SessionViolation } from '../../src/policies/types.js';
import type { Session } from '../../src/db/snapshot.js';
import { IDENTITY, session } from '../support/sessions.js';

const exempt = { superusers: true, roles: ['postgres', 'dba_*'], applications: ['pg_dump'] };
const safety = { maxFraction: 0.5, minActions: 5 };

function violation(s: Session, seconds = 100): SessionViolation {
  return {
    target: 'default',
    policy: 'idle',
    kind: 'idle_session',
    session: s,
    seconds,
    overSeconds: seconds - 60,
    reason: 'idle',
    action: 'terminate',
    recheck: { states: ['idle'], since: 'state_change', thresholdSeconds: 60 },
  };
}

describe('protectionOf', () => {
  it('protects non-client backends, our own pids, pg_* roles, superusers, exempt roles and applications', () => {
    const own = new Set([77]);
    expect(protectionOf(session({ backendType: 'walsender' }), exempt, own, IDENTITY)).toBe('not a client backend');
    expect(protectionOf(session({ pid: 77 }), exempt, own, IDENTITY)).toBe("pgwarden's own session");
    expect(protectionOf(session({ role: 'pg_monitor' }), exempt, own, IDENTITY)).toBe('reserved pg_* role');
    expect(protectionOf(session({ superuser: true }), exempt, own, IDENTITY)).toMatch(/superuser/);
    expect(protectionOf(session({ superuser: true }), { ...exempt, superusers: false }, own, IDENTITY)).toBeNull();
    expect(protectionOf(session({ role: 'dba_alice' }), exempt, own, IDENTITY)).toBe('exempt role');
    expect(protectionOf(session({ application: 'pg_dump' }), exempt, own, IDENTITY)).toBe('exempt application');
    // a name is never proof: a session calling itself pgwarden is fair game
    expect(protectionOf(session({ application: 'pgwarden' }), exempt, own, IDENTITY)).toBeNull();
  });
});

describe('planSessionActions', () => {
  it('drops protected sessions, plans oldest first up to the cap and skips the rest', () => {
    const violations = [violation(session(), 100), violation(session(), 300), violation(session({ role: 'postgres' }), 999), violation(session(), 200)];
    const plan = planSessionActions({ violations, maxActionsPerRun: 2, clientSessions: 100, exempt, safety, ownPids: new Set(), self: IDENTITY });
    expect(plan.violations.map((v) => v.seconds)).toEqual([300, 200, 100]);
    expect(plan.actions.map((a) => [a.violation.seconds, a.result])).toEqual([
      [300, 'planned'],
      [200, 'planned'],
      [100, 'skipped'],
    ]);
    expect(plan.actions[2]?.detail).toBe('cap of 2 actions per run reached');
    expect(plan.actions[0]?.sql).toMatch(/^select pg_terminate_backend\(pid\) from pg_stat_activity\nwhere pid = \d+/);
  });

  it('trips the circuit breaker above minActions and maxFraction, and not below either', () => {
    const many = Array.from({ length: 6 }, () => violation(session()));
    const tripped = planSessionActions({ violations: many, maxActionsPerRun: 50, clientSessions: 10, exempt, safety, ownPids: new Set(), self: IDENTITY });
    expect(tripped.breaker).toMatch(/circuit breaker: the run would act on 6 of 10 client sessions \(60% > 50%\)/);
    expect(tripped.actions.every((a) => a.result === 'skipped')).toBe(true);
    // 6 of 20 is 30%: fine
    expect(planSessionActions({ violations: many, maxActionsPerRun: 50, clientSessions: 20, exempt, safety, ownPids: new Set(), self: IDENTITY }).breaker).toBeUndefined();
    // 5 of 5 is 100% but not more than minActions: fine
    const five = many.slice(0, 5);
    expect(planSessionActions({ violations: five, maxActionsPerRun: 50, clientSessions: 5, exempt, safety, ownPids: new Set(), self: IDENTITY }).breaker).toBeUndefined();
  });
});
