/** `pgwarden logout` against real sessions. */
import { describe, expect, it } from 'vitest';
import { quoteIdent } from '../../src/db/quote.js';
import { cli } from '../support/cli.js';
import { ROLE_PASSWORD, testDatabaseUrl, tryLogin, urlFor, useFixture, waitFor } from '../support/fixture.js';

const fixture = useFixture('logout');
const base = () => ['--database-url', testDatabaseUrl(), '--log-level', 'error'];

interface Out {
  actions: { action: string; role: string; pid?: number; database?: string; sql: string; result: string; detail?: string }[];
  undo?: string[];
}

function connectAs(role: string, database: string): Promise<string | true> {
  return tryLogin(urlFor(database, { name: role, password: ROLE_PASSWORD }));
}

describe('pgwarden logout ROLE', () => {
  it('ends only that role\'s sessions, only in --database when given', async () => {
    const f = fixture();
    const role = await f.createRole(f.name(`O'Neil Ünï`));
    const other = await f.createRole(f.name('other'));
    const db = await f.createDatabase(f.name('db'));
    const here = await f.openSession({ role, database: db, state: 'idle' });
    const there = await f.openSession({ role, state: 'idle in transaction' });
    const bystander = await f.openSession({ role: other, database: db, state: 'idle' });

    const result = await cli([...base(), '--json', 'logout', role, '--database', db, '--yes']);
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout) as Out;
    expect(out.actions.map((a) => [a.action, a.pid, a.result])).toEqual([['terminate', here.pid, 'done']]);
    await waitFor(async () => !(await f.alive(here.pid)), 'the session to end');
    expect(await f.alive(there.pid)).toBe(true);
    expect(await f.alive(bystander.pid)).toBe(true);

    const all = JSON.parse((await cli([...base(), '--json', 'logout', role, '--yes'])).stdout) as Out;
    expect(all.actions.map((a) => [a.pid, a.result])).toEqual([[there.pid, 'done']]);
  });

  it('with --lock makes the role NOLOGIN first, so it cannot come back', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('locked'));
    const s = await f.openSession({ role, state: 'idle' });
    const out = JSON.parse((await cli([...base(), '--json', 'logout', role, '--lock', '--yes'])).stdout) as Out;
    expect(out.actions.map((a) => [a.action, a.result])).toEqual([
      ['nologin', 'done'],
      ['terminate', 'done'],
    ]);
    expect(out.undo).toEqual([`alter role ${quoteIdent(role)} login`]);
    await waitFor(async () => !(await f.alive(s.pid)), 'the session to end');
    expect(await connectAs(role, 'postgres')).toMatch(/not permitted to log in/);
  });

  it('refuses without a terminal unless --yes or --dry-run; --dry-run prints the SQL and does nothing', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('asked'));
    const s = await f.openSession({ role, state: 'idle' });
    const refused = await cli([...base(), 'logout', role]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/refusing to act without a terminal/);
    const dry = await cli([...base(), 'logout', role, '--lock', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`alter role ${quoteIdent(role)} nologin`);
    expect(dry.stdout).toContain('select pg_terminate_backend(pid)');
    expect(dry.stdout).toMatch(/planned/);
    // on a terminal, "n" does nothing and "y" acts
    const no = await cli([...base(), 'logout', role], {}, { answers: ['n'] });
    expect(no.stderr).toMatch(/proceed\? \[y\/N\]/);
    expect(no.stderr).toContain('nothing was done');
    expect(await f.alive(s.pid)).toBe(true);
    const yes = await cli([...base(), 'logout', role], {}, { answers: ['y'] });
    expect(yes.code).toBe(0);
    await waitFor(async () => !(await f.alive(s.pid)), 'the session to end');
    expect((await cli([...base(), 'logout', f.name('ghost'), '--yes'])).code).toBe(2);
  });
});

describe('pgwarden logout --database DB', () => {
  it('--lock revokes CONNECT from PUBLIC and every grantee, ends everyone\'s sessions there, and prints the undo', async () => {
    const f = fixture();
    const a = await f.createRole(f.name('a'));
    const b = await f.createRole(f.name('b'));
    const db = await f.createDatabase(f.name('shop'));
    await f.sql(`grant connect on database ${quoteIdent(db)} to ${quoteIdent(b)}`);
    const sa = await f.openSession({ role: a, database: db, state: 'idle' });
    const sb = await f.openSession({ role: b, database: db, state: 'idle in transaction' });
    const elsewhere = await f.openSession({ role: a, state: 'idle' });

    const result = await cli([...base(), '--json', 'logout', '--database', db, '--lock', '--yes']);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/superusers and the owner .* can still connect/);
    const out = JSON.parse(result.stdout) as Out;
    expect(out.actions.filter((x) => x.action === 'revoke_connect').map((x) => x.role).sort()).toEqual(['PUBLIC', b].sort());
    // (other tests visiting every database may have a session here too: only ours are asserted)
    const ours = out.actions.filter((x) => x.action === 'terminate' && (x.role === a || x.role === b));
    expect(ours.map((x) => x.pid).sort()).toEqual([sa.pid, sb.pid].sort());
    expect([...ours, ...out.actions.filter((x) => x.action !== 'terminate')].every((x) => x.result === 'done')).toBe(true);
    for (const s of [sa, sb]) await waitFor(async () => !(await f.alive(s.pid)), `pid ${s.pid} to end`);
    expect(await f.alive(elsewhere.pid)).toBe(true);
    expect(await connectAs(a, db)).toMatch(/permission denied for database/);
    expect(await connectAs(b, db)).toMatch(/permission denied for database/);

    for (const sql of out.undo ?? []) await f.sql(sql);
    expect(await connectAs(a, db)).toBe(true);
    expect(await connectAs(b, db)).toBe(true);
  });

  it('--lock=all sets ALLOW_CONNECTIONS false, and its undo restores it', async () => {
    const f = fixture();
    const a = await f.createRole(f.name('a'));
    const db = await f.createDatabase(f.name('all'));
    const s = await f.openSession({ role: a, database: db, state: 'idle' });
    const out = JSON.parse((await cli([...base(), '--json', 'logout', '--database', db, '--lock=all', '--yes'])).stdout) as Out;
    expect(out.actions.filter((x) => x.action !== 'terminate' || x.role === a).map((x) => [x.action, x.result])).toEqual([
      ['lock_database', 'done'],
      ['terminate', 'done'],
    ]);
    await waitFor(async () => !(await f.alive(s.pid)), 'the session to end');
    const { rows } = await f.sql<{ datallowconn: boolean }>('select datallowconn from pg_database where datname = $1', [db]);
    expect(rows[0]?.datallowconn).toBe(false);
    expect(out.undo).toEqual([`alter database ${quoteIdent(db)} allow_connections true`]);
    await f.sql(out.undo![0]!);
    expect(await connectAs(a, db)).toBe(true);
  });
});
