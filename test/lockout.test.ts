/**
 * The lockout window (issue 14, case 4): a session that logs in between the read of a role's
 * sessions and the commit of its NOLOGIN must not survive. The NOLOGIN is held back by a real
 * row lock on the role (another transaction's ALTER ROLE), a new session logs in meanwhile, and
 * once the lockout is done none of the role's sessions may be left.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { RunOutput } from '../src/cli/run.js';
import { runCli } from '../src/cli/program.js';
import { quoteIdent } from '../src/db/quote.js';
import { cli, isolatedEnv } from './support/cli.js';
import { useConfigFiles } from './support/config-file.js';
import { testDatabaseUrl, useFixture, waitFor, type Fixture, type OpenSession } from './support/fixture.js';
import { createCloudAdmin, grantAdminOn, serverVersionNum } from './support/roles.js';

const fixture = useFixture('lockout');
const writeConfig = useConfigFiles('lockout');
// The NOLOGIN waits up to 4 s for the other transaction: more than that before it gives up.
const LOCK_TIMEOUT = { PGWARDEN_DATABASE_LOCK_TIMEOUT: '20s' };

/** Another transaction holds `role`'s catalog row for `ms` (what any ALTER ROLE in flight does). */
async function holdRoleRow(role: string, ms: number): Promise<{ done: Promise<unknown>; client: pg.Client }> {
  const client = new pg.Client({ connectionString: testDatabaseUrl(), application_name: 'pgwarden-test-blocker' });
  client.on('error', () => undefined);
  await client.connect();
  await client.query('begin');
  await client.query(`alter role ${quoteIdent(role)} connection limit 50`);
  const done = client
    .query('select pg_sleep($1)', [ms / 1000])
    .then(() => client.query('rollback'))
    .finally(() => client.end())
    .catch(() => undefined);
  return { done, client };
}

async function sessionsOf(f: Fixture, role: string): Promise<number[]> {
  const { rows } = await f.sql<{ pid: number }>("select pid from pg_stat_activity where usename = $1 and backend_type = 'client backend'", [role]);
  return rows.map((r) => r.pid);
}

/**
 * Runs `command` while another transaction holds `role`'s row for 4 s, and logs in as `role`
 * 1.5 s later (still allowed: the NOLOGIN has not committed); returns the output and both pids.
 */
async function lockoutRace(f: Fixture, role: string, command: () => Promise<{ code: number; stdout: string }>) {
  const first = await f.openSession({ role, state: 'idle' });
  const blocker = await holdRoleRow(role, 4000);
  const running = command();
  const late = await loginMeanwhile(f, role, 1500);
  const result = await running;
  await blocker.done;
  return { code: result.code, out: JSON.parse(result.stdout) as RunOutput, first: first.pid, late: late.pid };
}

/** NOLOGIN, then both sessions ended: the one from before and the one that logged in meanwhile. */
function expectBothEnded(race: Awaited<ReturnType<typeof lockoutRace>>): void {
  // The terminations come in pid order, which says nothing of which logged in first.
  const [lockAction, ...kills] = race.out.actions.map((a) => [a.action, a.pid ?? null, a.result]);
  expect(lockAction).toEqual(['nologin', null, 'done']);
  expect(kills.sort()).toEqual(
    [
      ['terminate', race.first, 'done'],
      ['terminate', race.late, 'done'],
    ].sort(),
  );
  expect(race.code).toBe(0);
}

/** While the NOLOGIN waits, a new session of `role` logs in (it still may). */
async function loginMeanwhile(f: Fixture, role: string, afterMs: number): Promise<OpenSession> {
  await new Promise((r) => setTimeout(r, afterMs));
  return f.openSession({ role, state: 'idle' });
}

describe('the lockout window', () => {
  it('logout --lock: a session opened while the NOLOGIN waited is ended too', async () => {
    const f = fixture();
    const x = await f.createRole(f.name('x'));
    expectBothEnded(await lockoutRace(f, x, () => cli(['--database-url', testDatabaseUrl(), '--log-level', 'error', '--json', 'logout', x, '--lock', '--yes'], LOCK_TIMEOUT)));
    // Verified by the command before it returned: nobody of x is left.
    expect(await sessionsOf(f, x)).toEqual([]);
  });

  it('logout --lock after a confirmation left open: the sessions are read after the NOLOGIN, not when asked', async () => {
    const f = fixture();
    const x = await f.createRole(f.name('x'));
    const first = await f.openSession({ role: x, state: 'idle' });
    let late: OpenSession | undefined;
    let stdout = '';
    let stderr = '';
    const code = await runCli(['--database-url', testDatabaseUrl(), '--log-level', 'error', '--json', 'logout', x, '--lock'], {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      env: { PATH: process.env.PATH, ...isolatedEnv({}) },
      interactive: true,
      // The person reads the plan; meanwhile the user logs in again; then "y".
      ask: async (question: string) => {
        stderr += question;
        late = await f.openSession({ role: x, state: 'idle' });
        return 'y';
      },
      readStdin: () => Promise.resolve(''),
      raiseExitCode: () => undefined,
    });
    expect(stderr).toContain(String(first.pid));
    const out = JSON.parse(stdout) as RunOutput;
    expectBothEnded({ code, out, first: first.pid, late: late?.pid as number });
    expect(code).toBe(0);
    expect(await sessionsOf(f, x)).toEqual([]);
  });

  it('disabled_role, as the cloud-admin role: a session opened while the NOLOGIN waited is ended too', async () => {
    const f = fixture();
    const admin = await createCloudAdmin(f);
    const x = await f.createRole(f.name('x'));
    if ((await serverVersionNum(f)) >= 160000) await grantAdminOn(f, admin, [x]);
    const config = writeConfig({ mode: 'enforce', policies: [{ name: 'dr', kind: 'disabled_role', disabledWhen: { roles: [x] }, actions: ['nologin', 'terminate'] }] });
    expectBothEnded(await lockoutRace(f, x, () => cli(['--database-url', admin.url(), '--log-level', 'error', '--config', config, '--json', 'run', '--once'], LOCK_TIMEOUT)));
    await waitFor(async () => (await sessionsOf(f, x)).length === 0, 'no session of x left', 2000);
  });
});
