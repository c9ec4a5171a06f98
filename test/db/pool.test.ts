/**
 * A pooled client whose backend is terminated while pgwarden holds it (issue 14, case 9): pg-pool
 * removes its idle `error` listener on checkout, so without one of ours the connection's 'error'
 * event would have no listener and end the process. The statement fails instead, the broken client
 * is dropped from the pool, and the next statement gets a fresh connection.
 */
import type pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { runDdlPlans, type RoleActionPlan } from '../../src/actions/role-actions.js';
import { errorCode } from '../../src/db/pg-errors.js';
import type { TargetDb } from '../../src/db/pool.js';
import { quoteIdent } from '../../src/db/quote.js';
import { useFixture, waitFor } from '../support/fixture.js';
import { testTarget } from '../support/target.js';

const fixture = useFixture('pool');
let db: TargetDb | undefined;
afterEach(async () => {
  expect(await db?.end()).not.toBe(false);
  db = undefined;
});

function pidOf(client: pg.ClientBase): number {
  return (client as unknown as { processID: number }).processID;
}

/** Resolves once the client has seen its connection end (the server closed it). */
function ended(client: pg.ClientBase): () => boolean {
  let seen = false;
  client.once('end', () => (seen = true));
  return () => seen;
}

describe('TargetDb.withClient when the backend is terminated', () => {
  it('between two statements: the second fails with the reason, the process survives, the next statement uses a fresh connection', async () => {
    const f = fixture();
    db = testTarget();
    let pid = 0;
    const outcome = db.withClient(async (client) => {
      await client.query('select 1');
      pid = pidOf(client);
      const isEnded = ended(client);
      await f.sql('select pg_terminate_backend($1)', [pid]);
      await waitFor(() => Promise.resolve(isEnded()), 'the terminated connection to end', 5000);
      return client.query('select 2');
    });
    const err = await outcome.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    // The cause, not pg's "not queryable" afterthought: admin_shutdown.
    expect(errorCode(err)).toBe('57P01');
    expect(db.ownPids.has(pid)).toBe(false);

    expect((await db.query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
    const next = await db.withClient(async (client) => {
      await client.query('select 1');
      return pidOf(client);
    });
    expect(next).not.toBe(pid);
  });

  it('during a DDL waiting on a lock: the action is failed with the reason, and the next run works', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('victim'));
    db = testTarget();
    // ALTER ROLE needs the role's row in pg_authid: this transaction holds that row (only that
    // row — the other test files running meanwhile create and alter roles of their own).
    const holder = await f.openSession({ state: 'idle' });
    await holder.client.query('begin');
    await holder.client.query(`alter role ${quoteIdent(role)} connection limit 50`);
    const plan: RoleActionPlan = { target: 'default', policy: 'p', action: 'nologin', role, sql: `alter role ${quoteIdent(role)} nologin`, result: 'planned' };
    const running = runDdlPlans(db, [plan], 30_000);
    const { pid } = await waitFor(async () => {
      // Only this pool's own backend: never another test's.
      const { rows } = await f.sql<{ pid: number }>(
        "select pid from pg_stat_activity where pid = any($1) and wait_event_type = 'Lock' and query like 'alter role%'",
        [[...(db?.ownPids ?? [])]],
      );
      return rows[0];
    }, 'the ALTER ROLE to wait on the lock');
    await f.sql('select pg_terminate_backend($1)', [pid]);
    await running;
    expect(plan.result).toBe('failed');
    expect(plan.detail).toMatch(/terminat/i);
    await waitFor(() => Promise.resolve(!db?.ownPids.has(pid)), 'the broken client to leave the pool', 5000);

    await holder.client.query('rollback');
    const again: RoleActionPlan = { ...plan, result: 'planned' };
    await runDdlPlans(db, [again], 30_000);
    expect(again).toMatchObject({ result: 'done' });
    const { rows } = await f.sql<{ rolcanlogin: boolean }>('select rolcanlogin from pg_roles where rolname = $1', [role]);
    expect(rows).toEqual([{ rolcanlogin: false }]);
  });

  it('while idle in the pool: the pool drops it and the next statement works', async () => {
    const f = fixture();
    db = testTarget();
    const pid = await db.withClient((client) => Promise.resolve(pidOf(client)));
    await f.sql('select pg_terminate_backend($1)', [pid]);
    await waitFor(() => Promise.resolve(!db?.ownPids.has(pid)), 'the pool to drop the terminated client', 5000);
    expect((await db.query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
  });
});
