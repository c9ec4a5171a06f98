/** The executor against real backends: one statement, re-checked at kill time. */
import { afterEach, describe, expect, it } from 'vitest';
import { executeSessionActions } from '../../src/actions/executor.js';
import { planSessionActions } from '../../src/actions/planner.js';
import type { TargetDb } from '../../src/db/pool.js';
import { fetchSessions } from '../../src/db/snapshot.js';
import { idleInTransaction } from '../../src/policies/idle-in-transaction.js';
import { longQuery } from '../../src/policies/long-query.js';
import { EMPTY_HISTORY } from '../../src/policies/types.js';
import type { Match } from '../../src/config/policies.js';
import type { IdleInTransactionPolicy } from '../../src/policies/idle-in-transaction.js';
import type { LongQueryPolicy } from '../../src/policies/long-query.js';
import { useFixture, waitFor } from '../support/fixture.js';
import { testTarget } from '../support/target.js';

const fixture = useFixture('executor');
let db: TargetDb | undefined;
afterEach(async () => {
  await db?.end();
  db = undefined;
});

const only = (prefix: string): Match => ({ roles: [`${prefix}_*`], databases: [], applications: [], exclude: { roles: [], databases: [], applications: [] } });
const common = { schedule: '* * * * *', mode: undefined, maxActionsPerRun: 50, targets: undefined };
const exempt = { superusers: true, roles: [], applications: [] };
const safety = { maxFraction: 1, minActions: 1000 };

/** Plans an idle_in_transaction policy (1 s) over this fixture's roles, from a fresh snapshot. */
async function planIdleInTransaction(target: TargetDb, prefix: string) {
  const policy: IdleInTransactionPolicy = { ...common, name: 'iit', kind: 'idle_in_transaction', maxIdleSeconds: 1, action: 'terminate', onlyWhenBlocking: false, match: only(prefix) };
  const snapshot = await fetchSessions(target);
  return planSessionActions({
    violations: idleInTransaction(snapshot, policy, EMPTY_HISTORY),
    maxActionsPerRun: 50,
    clientSessions: 100,
    exempt,
    safety,
    ownPids: target.ownPids,
    self: snapshot.self,
  });
}

describe('executeSessionActions', () => {
  it('terminates every planned backend in one statement and reports done', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('app'));
    const sessions = await Promise.all([1, 2, 3].map(() => f.openSession({ role, state: 'idle in transaction' })));
    await f.waitForAge(sessions.map((s) => s.pid), 1);
    db = testTarget();
    const plan = await planIdleInTransaction(db, f.prefix);
    expect(plan.actions).toHaveLength(3);
    const done = await executeSessionActions(db, plan.actions);
    expect(done.map((a) => a.result)).toEqual(['done', 'done', 'done']);
    // New outcome objects: the plans stay as the planner made them.
    expect(plan.actions.map((a) => a.result)).toEqual(['planned', 'planned', 'planned']);
    for (const s of sessions) await waitFor(async () => !(await f.alive(s.pid)), `pid ${s.pid} to end`);
  });

  it('leaves alone, as gone, a backend that changed state or whose backend_start differs (pid reuse)', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('app'));
    const changed = await f.openSession({ role, state: 'idle in transaction' });
    const reused = await f.openSession({ role, state: 'idle in transaction' });
    const victim = await f.openSession({ role, state: 'idle in transaction' });
    await f.waitForAge([changed.pid, reused.pid, victim.pid], 1);
    db = testTarget();
    const plan = await planIdleInTransaction(db, f.prefix);
    expect(plan.actions).toHaveLength(3);
    // Between snapshot and kill: one session commits (now idle), and for another we pretend the pid
    // now belongs to a new backend by handing the executor a stale backend_start.
    await changed.client.query('commit');
    const stale = plan.actions.find((a) => a.violation.session.pid === reused.pid)!;
    Object.assign(stale, {
      violation: { ...stale.violation, session: { ...stale.violation.session, backendStartUs: String(BigInt(stale.violation.session.backendStartUs!) - 1n) } },
    });
    const done = await executeSessionActions(db, plan.actions);
    const result = new Map(done.map((a) => [a.violation.session.pid, a.result]));
    expect(result.get(changed.pid)).toBe('gone');
    expect(result.get(reused.pid)).toBe('gone');
    expect(result.get(victim.pid)).toBe('done');
    await waitFor(async () => !(await f.alive(victim.pid)), 'victim to end');
    expect(await f.alive(changed.pid)).toBe(true);
    expect(await f.alive(reused.pid)).toBe(true);
  });

  it('cancels a running query without ending the session', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('app'));
    const running = await f.openSession({ role, state: 'active' });
    await f.waitForAge([running.pid], 1, 'query_start');
    db = testTarget();
    const policy: LongQueryPolicy = { ...common, name: 'lq', kind: 'long_query', maxDurationSeconds: 1, action: 'cancel', escalateAfterSeconds: undefined, match: only(f.prefix) };
    const snapshot = await fetchSessions(db);
    const plan = planSessionActions({ violations: longQuery(snapshot, policy, EMPTY_HISTORY), maxActionsPerRun: 50, clientSessions: 100, exempt, safety, ownPids: db.ownPids, self: snapshot.self });
    const done = await executeSessionActions(db, plan.actions);
    expect(done.map((a) => [a.action, a.result])).toEqual([['cancel', 'done']]);
    await waitFor(async () => {
      const { rows } = await f.sql<{ state: string }>('select state from pg_stat_activity where pid = $1', [running.pid]);
      return rows[0]?.state === 'idle';
    }, 'the query to be cancelled');
    expect(await f.alive(running.pid)).toBe(true);
  });

  it('the printed single-session SQL is runnable and re-checks the same way', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('app'));
    const s = await f.openSession({ role, state: 'idle in transaction' });
    await f.waitForAge([s.pid], 1);
    db = testTarget();
    const plan = await planIdleInTransaction(db, f.prefix);
    const sql = plan.actions[0]!.sql;
    // With a threshold of a day it must not match; as printed it must.
    const { rows: none } = await f.sql(sql.replace("interval '1 seconds'", "interval '86400 seconds'"));
    expect(none).toHaveLength(0);
    expect(await f.alive(s.pid)).toBe(true);
    const { rows } = await f.sql(sql);
    expect(rows).toEqual([{ pg_terminate_backend: true }]);
    await waitFor(async () => !(await f.alive(s.pid)), 'the session to end');
  });
});
