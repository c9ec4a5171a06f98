import { describe, expect, it } from 'vitest';
import type { Match } from '../../src/config/policies.js';
import type { IdleInTransactionPolicy } from '../../src/policies/idle-in-transaction.js';
import type { IdleSessionPolicy } from '../../src/policies/idle-session.js';
import type { LongQueryPolicy } from '../../src/policies/long-query.js';
import type { LongTransactionPolicy } from '../../src/policies/long-transaction.js';
import { idleInTransaction } from '../../src/policies/idle-in-transaction.js';
import { idleSession } from '../../src/policies/idle-session.js';
import { longQuery } from '../../src/policies/long-query.js';
import { longTransaction } from '../../src/policies/long-transaction.js';
import { matches } from '../../src/policies/match.js';
import { backendKey, EMPTY_HISTORY } from '../../src/policies/types.js';
import { session, snapshot } from '../support/sessions.js';
import type { Session } from '../../src/db/snapshot.js';
import { connectionPressure, type ConnectionPressurePolicy } from '../../src/policies/connection-pressure.js';
import { connectionQuota, type ConnectionQuotaPolicy } from '../../src/policies/connection-quota.js';

const noMatch: Match = { roles: [], databases: [], applications: [], exclude: { roles: [], databases: [], applications: [] } };
const common = { schedule: '* * * * *', mode: undefined, match: noMatch, maxActionsPerRun: 50, targets: undefined };

describe('idle_session', () => {
  const policy: IdleSessionPolicy = { ...common, name: 'idle', kind: 'idle_session', maxIdleSeconds: 60, action: 'terminate' };
  it('flags idle client sessions past the limit, oldest first, and nothing else', () => {
    const old = session({ state: 'idle', stateSeconds: 600 });
    const older = session({ state: 'idle', stateSeconds: 6000 });
    const fresh = session({ state: 'idle', stateSeconds: 59 });
    const active = session({ state: 'active', stateSeconds: 600 });
    const worker = session({ state: 'idle', stateSeconds: 600, backendType: 'autovacuum worker' });
    const violations = idleSession(snapshot([old, older, fresh, active, worker]), policy, EMPTY_HISTORY);
    expect(violations.map((v) => v.session.pid)).toEqual([older.pid, old.pid]);
    expect(violations[0]).toMatchObject({ kind: 'idle_session', action: 'terminate', seconds: 6000, overSeconds: 5940 });
    expect(violations[0]?.reason).toBe('idle for 1h40m, over the limit of 1m0s');
    expect(violations[0]?.recheck).toEqual({ states: ['idle'], since: 'state_change', thresholdSeconds: 60 });
  });
});

describe('idle_in_transaction', () => {
  const policy: IdleInTransactionPolicy = { ...common, name: 'iit', kind: 'idle_in_transaction', maxIdleSeconds: 300, action: 'terminate', onlyWhenBlocking: false };
  it('flags both idle-in-transaction states', () => {
    const a = session({ state: 'idle in transaction', stateSeconds: 301 });
    const b = session({ state: 'idle in transaction (aborted)', stateSeconds: 900 });
    const c = session({ state: 'idle', stateSeconds: 900 });
    expect(idleInTransaction(snapshot([a, b, c]), policy, EMPTY_HISTORY).map((v) => v.session.pid)).toEqual([b.pid, a.pid]);
  });
});

describe('long_query', () => {
  const policy: LongQueryPolicy = { ...common, name: 'lq', kind: 'long_query', maxDurationSeconds: 600, action: 'cancel', escalateAfterSeconds: 60 };
  it('cancels active queries past the limit, measured from query_start', () => {
    const long = session({ state: 'active', querySeconds: 700, stateSeconds: 700 });
    const idleLong = session({ state: 'idle', querySeconds: 7000 });
    const violations = longQuery(snapshot([long, idleLong]), policy, EMPTY_HISTORY);
    expect(violations.map((v) => [v.session.pid, v.action])).toEqual([[long.pid, 'cancel']]);
    expect(violations[0]?.recheck.since).toBe('query_start');
  });

  it('escalates to terminate a backend cancelled escalateAfter ago and still over the limit', () => {
    const stuck = session({ state: 'active', querySeconds: 800 });
    const recent = session({ state: 'active', querySeconds: 800 });
    const now = 1_000_000;
    const cancelled = new Map([
      [backendKey(stuck), now - 61_000],
      [backendKey(recent), now - 30_000],
    ]);
    const violations = longQuery(snapshot([stuck, recent]), policy, { cancelled, now });
    const byPid = new Map(violations.map((v) => [v.session.pid, v]));
    expect(byPid.get(stuck.pid)?.action).toBe('terminate');
    expect(byPid.get(stuck.pid)?.reason).toMatch(/escalated to terminate/);
    expect(byPid.get(recent.pid)?.action).toBe('cancel');
  });

  it('a new backend with the same pid is not escalated', () => {
    const before = session({ pid: 4242, backendStartUs: '1', state: 'active', querySeconds: 800 });
    const after = { ...before, backendStartUs: '2' };
    const violations = longQuery(snapshot([after]), policy, { cancelled: new Map([[backendKey(before), 0]]), now: 10_000_000 });
    expect(violations[0]?.action).toBe('cancel');
  });
});

describe('long_transaction', () => {
  const policy: LongTransactionPolicy = { ...common, name: 'lt', kind: 'long_transaction', maxDurationSeconds: 3600, action: 'terminate' };
  it('flags transactions open too long in any state', () => {
    const active = session({ state: 'active', xactSeconds: 4000 });
    const idleTx = session({ state: 'idle in transaction', xactSeconds: 3601 });
    const noTx = session({ state: 'idle', xactSeconds: null });
    const short = session({ state: 'active', xactSeconds: 10 });
    const violations = longTransaction(snapshot([active, idleTx, noTx, short]), policy, EMPTY_HISTORY);
    expect(violations.map((v) => v.session.pid)).toEqual([active.pid, idleTx.pid]);
    expect(violations[0]?.recheck).toEqual({ states: null, since: 'xact_start', thresholdSeconds: 3600 });
  });
});

describe('match', () => {
  it('filters by role, database and application globs, minus excludes', () => {
    const match: Match = {
      roles: ['app_*'],
      databases: ['shop', 'crm'],
      applications: [],
      exclude: { roles: ['app_admin'], databases: [], applications: ['psql'] },
    };
    expect(matches(match, { role: 'app_web', database: 'shop', application: 'web' })).toBe(true);
    expect(matches(match, { role: 'etl', database: 'shop', application: 'web' })).toBe(false);
    expect(matches(match, { role: 'app_web', database: 'hr', application: 'web' })).toBe(false);
    expect(matches(match, { role: 'app_admin', database: 'shop', application: 'web' })).toBe(false);
    expect(matches(match, { role: 'app_web', database: 'shop', application: 'psql' })).toBe(false);
    expect(matches(noMatch, { role: 'anyone', database: null, application: '' })).toBe(true);
  });
});

describe('connection_pressure and connection_quota (pure)', () => {
  const slots = (usable: number) => ({ maxConnections: usable + 3, superuserReserved: 3, reserved: 0, usable });
  const withSlots = (sessions: Session[], usable: number) => ({ ...snapshot(sessions), slots: slots(usable) });
  const anyone = { candidate: () => true };
  const pressure: ConnectionPressurePolicy = {
    ...common,
    name: 'pressure',
    kind: 'connection_pressure',
    above: { percent: 85 },
    target: { percent: 60 },
    minIdleSeconds: 30,
    states: ['idle'],
    action: 'terminate',
  };

  it('acts only above `above`, and then on the longest idle down to `target`: never active, young, protected or other-state sessions', () => {
    const idle = Array.from({ length: 14 }, (_, i) => session({ state: 'idle', stateSeconds: 100 + i * 10 }));
    const others = [
      session({ state: 'active', stateSeconds: 9999 }),
      session({ state: 'idle', stateSeconds: 5 }),
      session({ state: 'idle in transaction', stateSeconds: 9999 }),
      session({ state: 'idle', stateSeconds: 9998, role: 'exempt_me' }),
    ];
    // 18 of 20 usable: above 85 % (17); target 60 % of 20 = 12, so 6 to end.
    const v = connectionPressure(withSlots([...idle, ...others], 20), pressure, { candidate: (s) => s.role !== 'exempt_me' });
    expect(v.map((x) => x.session.pid)).toEqual(idle.slice(-6).reverse().map((s) => s.pid));
    expect(v[0]).toMatchObject({ condition: 'pressure', recheck: { states: ['idle'], since: 'state_change', thresholdSeconds: 30, overLimit: { per: 'server', limit: 12 } } });
    expect(v[0]?.reason).toBe('18 of 20 usable connection slots taken, above 85% (17): idle for 3m50s, among the 6 longest idle to end to get back to 60% (12)');
    // 17 of 20: at `above`, not over it: nothing.
    expect(connectionPressure(withSlots([...idle, ...others].slice(1), 20), pressure, anyone)).toEqual([]);
    // A backend hidden from pgwarden's role may be a worker, not a client: nothing is decided then.
    const hidden = session({ state: null, backendType: '', hidden: true, stateSeconds: null });
    expect(connectionPressure(withSlots([...idle, ...others, hidden], 20), pressure, anyone)).toEqual([]);
    // Nor when the slots could not be read.
    expect(connectionPressure(withSlots([...idle, ...others], 0), pressure, anyone)).toEqual([]);
  });

  it('absolute numbers, and `states` with idle in transaction', () => {
    const policy = { ...pressure, above: { count: 4 }, target: { count: 2 }, states: ['idle', 'idle in transaction'] as const };
    const list = [session({ state: 'idle in transaction', stateSeconds: 500 }), session({ state: 'idle', stateSeconds: 400 }), session({ state: 'active' }), session({ state: 'idle', stateSeconds: 300 }), session({ state: 'idle', stateSeconds: 200 })];
    expect(connectionPressure(withSlots(list, 100), policy, anyone).map((v) => v.session.stateSeconds)).toEqual([500, 400, 300]);
  });

  it('a quota per role: only groups over it, their longest idle beyond it', () => {
    const policy: ConnectionQuotaPolicy = { ...common, name: 'quota', kind: 'connection_quota', per: 'role', max: 3, minIdleSeconds: 30, states: ['idle'], action: 'terminate' };
    const busy = Array.from({ length: 5 }, (_, i) => session({ role: 'busy', state: 'idle', stateSeconds: 100 + i }));
    const busyActive = session({ role: 'busy', state: 'active' });
    const calm = Array.from({ length: 3 }, (_, i) => session({ role: 'calm', state: 'idle', stateSeconds: 1000 + i }));
    const v = connectionQuota(withSlots([...busy, busyActive, ...calm], 100), policy, anyone);
    // busy: 6 sessions (one active) over 3: its 3 longest idle.
    expect(v.map((x) => x.session.pid)).toEqual([busy[4]!.pid, busy[3]!.pid, busy[2]!.pid]);
    expect(v[0]?.reason).toBe('role "busy" has 6 client sessions, over its quota of 3: idle for 1m44s, among its 3 longest idle');
    expect(v[0]?.recheck.overLimit).toEqual({ per: 'role', limit: 3 });
    expect(connectionQuota(withSlots([...busy, busyActive, ...calm], 100), { ...policy, per: 'role_database', max: 6 }, anyone)).toEqual([]);
  });
});
