/** pgwarden as a non-superuser with only the documented grants (docs/permissions.md). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunOutput } from '../src/cli/run.js';
import { quoteIdent } from '../src/db/quote.js';
import { cli } from './support/cli.js';
import { ROLE_PASSWORD, urlFor, useFixture, waitFor } from './support/fixture.js';

const fixture = useFixture('leastpriv');
const dir = mkdtempSync(join(tmpdir(), 'pgwarden-leastpriv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('least privilege', () => {
  it('enforces session policies and locks out a disabled user with pg_read_all_stats, pg_signal_backend and CREATEROLE (+ADMIN on 16+)', async () => {
    const f = fixture();
    const warden = await f.createRole(f.name('warden'), 'createrole');
    await f.sql(`grant pg_read_all_stats, pg_signal_backend to ${quoteIdent(warden)}`);
    const app = await f.createRole(f.name('app'));
    const leaver = await f.createRole(f.name('leaver'));
    const { rows } = await f.sql<{ v: number }>("select current_setting('server_version_num')::int as v");
    if (rows[0]!.v >= 160000) await f.sql(`grant ${quoteIdent(leaver)} to ${quoteIdent(warden)} with admin option`);
    const tx = await f.openSession({ role: app, state: 'idle in transaction' });
    const leaverSession = await f.openSession({ role: leaver, state: 'idle' });
    await f.waitForAge([tx.pid], 1);

    const config = join(dir, `${f.prefix}.json`);
    writeFileSync(
      config,
      JSON.stringify({
        mode: 'enforce',
        policies: [
          { name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s', match: { roles: [app] } },
          { name: 'dr', kind: 'disabled_role', disabledWhen: { roles: [leaver] }, actions: ['nologin', 'terminate'] },
        ],
      }),
    );
    const result = await cli(['--database-url', urlFor('postgres', { name: warden, password: ROLE_PASSWORD }), '--config', config, '--json', '--log-level', 'error', 'run', '--once']);
    const out = JSON.parse(result.stdout) as RunOutput;
    expect(out.actions.map((a) => [a.policy, a.action, a.result, a.detail ?? null])).toEqual([
      ['iit', 'terminate', 'done', null],
      ['dr', 'nologin', 'done', null],
      ['dr', 'terminate', 'done', null],
    ]);
    expect(result.code).toBe(0);
    for (const s of [tx, leaverSession]) await waitFor(async () => !(await f.alive(s.pid)), `pid ${s.pid} to end`);
    const { rows: login } = await f.sql<{ rolcanlogin: boolean }>('select rolcanlogin from pg_roles where rolname = $1', [leaver]);
    expect(login[0]?.rolcanlogin).toBe(false);
  });

  it('a kill it may not send (a superuser\'s backend) fails alone; the others in the same run are done', async () => {
    const f = fixture();
    const warden = await f.createRole(f.name('warden'));
    await f.sql(`grant pg_read_all_stats, pg_signal_backend to ${quoteIdent(warden)}`);
    const app = await f.createRole(f.name('app'));
    const boss = await f.createRole(f.name('boss'), 'superuser');
    const tx = await f.openSession({ role: app, state: 'idle in transaction' });
    const bossTx = await f.openSession({ role: boss, state: 'idle in transaction' });
    await f.waitForAge([tx.pid, bossTx.pid], 1);
    const config = join(dir, `${f.prefix}-su.json`);
    writeFileSync(
      config,
      JSON.stringify({
        mode: 'enforce',
        exempt: { superusers: false },
        policies: [{ name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s', match: { roles: [app, boss] } }],
      }),
    );
    const result = await cli(['--database-url', urlFor('postgres', { name: warden, password: ROLE_PASSWORD }), '--config', config, '--json', '--log-level', 'error', 'run', '--once']);
    const out = JSON.parse(result.stdout) as RunOutput;
    const byPid = new Map(out.actions.map((a) => [a.pid, a]));
    expect(byPid.get(tx.pid)?.result).toBe('done');
    expect(byPid.get(bossTx.pid)?.result).toBe('failed');
    expect(result.code).toBe(1);
    await waitFor(async () => !(await f.alive(tx.pid)), 'the app session to end');
    expect(await f.alive(bossTx.pid)).toBe(true);
  });

  it('without pg_read_all_stats it cannot judge other roles\' sessions — and says nothing false', async () => {
    const f = fixture();
    const blind = await f.createRole(f.name('blind'));
    const app = await f.createRole(f.name('app'));
    const tx = await f.openSession({ role: app, state: 'idle in transaction' });
    await f.waitForAge([tx.pid], 1);
    const config = join(dir, `${f.prefix}-blind.json`);
    writeFileSync(config, JSON.stringify({ mode: 'enforce', policies: [{ name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s', match: { roles: [app] } }] }));
    const result = await cli(['--database-url', urlFor('postgres', { name: blind, password: ROLE_PASSWORD }), '--config', config, '--json', '--log-level', 'error', 'run', '--once']);
    const out = JSON.parse(result.stdout) as RunOutput;
    expect(out.violations).toEqual([]);
    expect(await f.alive(tx.pid)).toBe(true);
  });
});
