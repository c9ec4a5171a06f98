/** `run --once`, `plan` and the daemon, end to end through the CLI against real sessions. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { RunOutput } from '../../src/cli/run.js';
import { cli, isolatedEnv } from '../support/cli.js';
import { useConfigFiles } from '../support/config-file.js';
import { freePort } from '../support/net.js';
import { testDatabaseUrl, useFixture, waitFor, type Fixture } from '../support/fixture.js';

const fixture = useFixture('run');
const writeConfig = useConfigFiles('run');

/** Every policy of these tests only ever sees this fixture's roles. */
function scoped(f: Fixture, policy: Record<string, unknown>): Record<string, unknown> {
  return { schedule: '* * * * * *', match: { roles: [`${f.prefix}_*`] }, ...policy };
}

async function runJson(args: string[]): Promise<{ code: number; out: RunOutput; stderr: string }> {
  const result = await cli(['--database-url', testDatabaseUrl(), '--json', '--log-level', 'error', ...args]);
  return { code: result.code, out: JSON.parse(result.stdout) as RunOutput, stderr: result.stderr };
}

describe('run --once', () => {
  it('enforces every session kind on what it must, sparing exempt roles and applications, superusers and fresh sessions', async () => {
    const f = fixture();
    const app = await f.createRole(f.name('app'));
    const exemptRole = await f.createRole(f.name('exempt'));
    const su = await f.createRole(f.name('su'), 'superuser');
    const victimTx = await f.openSession({ role: app, state: 'idle in transaction' });
    const victimAborted = await f.openSession({ role: app, state: 'idle in transaction (aborted)' });
    const victimIdle = await f.openSession({ role: app, state: 'idle' });
    const impostor = await f.openSession({ role: app, state: 'idle in transaction', application: 'pgwarden' });
    const slow = await f.openSession({ role: app, state: 'active' });
    const spareRole = await f.openSession({ role: exemptRole, state: 'idle in transaction' });
    const spareApp = await f.openSession({ role: app, state: 'idle in transaction', application: `${f.prefix}-backup` });
    const spareSu = await f.openSession({ role: su, state: 'idle in transaction' });
    // Every session but `fresh` past the 2 s limits (the spared ones too: spared, not too young).
    await f.waitForAge([victimTx, victimAborted, victimIdle, impostor, spareRole, spareApp, spareSu].map((s) => s.pid), 2, 'state_change');
    await f.waitForAge([slow.pid], 2, 'query_start');
    const fresh = await f.openSession({ role: app, state: 'idle in transaction' });

    const config = writeConfig({
      exempt: { superusers: true, roles: [exemptRole], applications: [`${f.prefix}-backup`] },
      policies: [
        scoped(f, { name: 'iit', kind: 'idle_in_transaction', maxIdle: '2s' }),
        scoped(f, { name: 'idle', kind: 'idle_session', maxIdle: '2s' }),
        scoped(f, { name: 'lq', kind: 'long_query', maxDuration: '2s', action: 'cancel' }),
      ],
    });
    const { code, out, stderr } = await runJson(['--config', config, '--mode', 'enforce', 'run', '--once']);
    expect(stderr + JSON.stringify(out.actions.filter((a) => a.result !== 'done'))).toBe('[]');
    expect(code).toBe(0);
    expect(out.mode).toBe('enforce');
    const done = (policy: string) => out.actions.filter((a) => a.policy === policy && a.result === 'done').map((a) => a.pid).sort();
    expect(done('iit')).toEqual([victimTx.pid, victimAborted.pid, impostor.pid].sort());
    expect(done('idle')).toEqual([victimIdle.pid]);
    expect(out.actions.find((a) => a.policy === 'lq')).toMatchObject({ action: 'cancel', result: 'done', pid: slow.pid, role: app });
    const iitViolation = out.violations.find((v) => v.pid === victimTx.pid)!;
    expect(Object.keys(iitViolation).sort()).toEqual(
      ['target', 'policy', 'kind', 'role', 'pid', 'backendStart', 'database', 'application', 'clientAddr', 'state', 'seconds', 'overSeconds', 'reason'].sort(),
    );
    expect(iitViolation).toMatchObject({ target: 'default', kind: 'idle_in_transaction', state: 'idle in transaction', role: app });
    expect(iitViolation.overSeconds).toBeGreaterThan(0);

    for (const s of [victimTx, victimAborted, victimIdle, impostor]) await waitFor(async () => !(await f.alive(s.pid)), `pid ${s.pid} to end`);
    for (const s of [spareRole, spareApp, spareSu, fresh, slow]) expect(await f.alive(s.pid), `pid ${s.pid} alive`).toBe(true);
    await waitFor(async () => {
      const { rows } = await f.sql<{ state: string }>('select state from pg_stat_activity where pid = $1', [slow.pid]);
      return rows[0]?.state === 'idle';
    }, 'the slow query to be cancelled');
  });

  it('in dry-run (plan) reports the same violations and kills nothing; --exit-code gives 3', async () => {
    const f = fixture();
    const app = await f.createRole(f.name('app'));
    const sessions = await Promise.all([0, 1].map(() => f.openSession({ role: app, state: 'idle in transaction' })));
    await f.waitForAge(sessions.map((s) => s.pid), 1);
    const config = writeConfig({ policies: [scoped(f, { name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s', mode: 'enforce' })] });
    const plan = await runJson(['--config', config, 'plan', '--exit-code']);
    expect(plan.code).toBe(3);
    expect(plan.out.mode).toBe('dry-run');
    expect(plan.out.actions.map((a) => a.result)).toEqual(['planned', 'planned']);
    expect(plan.out.actions[0]?.sql).toMatch(/^select pg_terminate_backend\(pid\) from pg_stat_activity/);
    for (const s of sessions) expect(await f.alive(s.pid)).toBe(true);
    const human = await cli(['--database-url', testDatabaseUrl(), '--config', config, '--log-level', 'error', 'plan']);
    expect(human.stdout).toContain('-> terminate: planned');
    expect(human.stdout).toContain(`pid ${sessions[0]!.pid}`);

    const enforce = await runJson(['--config', config, 'run', '--once']);
    expect(enforce.out.violations.map((v) => v.pid).sort()).toEqual(plan.out.violations.map((v) => v.pid).sort());
    expect(enforce.out.actions.map((a) => a.result)).toEqual(['done', 'done']);
  });

  it('holds the cap per run, oldest first, and the circuit breaker', async () => {
    const f = fixture();
    const app = await f.createRole(f.name('app'));
    // Ages 0.3 s apart by the server's clock, so that "oldest first" has one answer.
    const oldest = await f.openSession({ role: app, state: 'idle in transaction' });
    await f.waitForAge([oldest.pid], 0.3);
    const middle = await f.openSession({ role: app, state: 'idle in transaction' });
    await f.waitForAge([middle.pid], 0.3);
    const newest = await f.openSession({ role: app, state: 'idle in transaction' });
    await f.waitForAge([oldest.pid, middle.pid, newest.pid], 1);

    const breaker = writeConfig({
      safety: { minActions: 1, maxFraction: 0.01 },
      policies: [scoped(f, { name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s' })],
    });
    const tripped = await runJson(['--config', breaker, '--mode', 'enforce', 'run', '--once']);
    expect(tripped.out.actions.map((a) => a.result)).toEqual(['skipped', 'skipped', 'skipped']);
    expect(tripped.out.actions[0]?.detail).toMatch(/^circuit breaker/);
    for (const s of [oldest, middle, newest]) expect(await f.alive(s.pid)).toBe(true);

    const capped = writeConfig({ policies: [scoped(f, { name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s', maxActionsPerRun: 2 })] });
    const { out } = await runJson(['--config', capped, '--mode', 'enforce', 'run', '--once']);
    expect(out.actions.map((a) => [a.pid, a.result])).toEqual([
      [oldest.pid, 'done'],
      [middle.pid, 'done'],
      [newest.pid, 'skipped'],
    ]);
    expect(await f.alive(newest.pid)).toBe(true);
  });

  it('a per-policy mode overrides the global one', async () => {
    const f = fixture();
    const app = await f.createRole(f.name('app'));
    const tx = await f.openSession({ role: app, state: 'idle in transaction' });
    const idle = await f.openSession({ role: app, state: 'idle' });
    await f.waitForAge([tx.pid, idle.pid], 1);
    const config = writeConfig({
      mode: 'dry-run',
      policies: [
        scoped(f, { name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s', mode: 'enforce' }),
        scoped(f, { name: 'idle', kind: 'idle_session', maxIdle: '1s' }),
      ],
    });
    const { out } = await runJson(['--config', config, 'run', '--once']);
    expect(out.actions.map((a) => [a.policy, a.result])).toEqual([
      ['iit', 'done'],
      ['idle', 'planned'],
    ]);
    await waitFor(async () => !(await f.alive(tx.pid)), 'the enforced policy to act');
    expect(await f.alive(idle.pid)).toBe(true);
  });
});

describe('the daemon', () => {
  it('acts on schedule, exports the action in /metrics, answers health checks, and exits 0 on SIGTERM', async () => {
    const f = fixture();
    const app = await f.createRole(f.name('app'));
    const victim = await f.openSession({ role: app, state: 'idle in transaction' });
    const port = await freePort();
    const config = writeConfig({
      mode: 'enforce',
      server: { host: '127.0.0.1', port },
      policies: [scoped(f, { name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s' })],
    });
    const bin = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
    const child = spawn(process.execPath, [bin, '--config', config, '--database-url', testDatabaseUrl(), 'run'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: isolatedEnv(process.env),
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitFor(async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, '/readyz 200', 15_000);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      await waitFor(async () => !(await f.alive(victim.pid)), 'the daemon to terminate the session', 15_000);
      const metrics = await waitFor(async () => {
        const text = await (await fetch(`${base}/metrics`)).text();
        return text.includes('pgwarden_actions_total{target="default",policy="iit",action="terminate",result="done"} 1') && text;
      }, 'the counter to move');
      expect(metrics).toContain('pgwarden_actions_total{target="default",policy="iit",action="terminate",result="failed"} 0');
      expect(metrics).toContain('pgwarden_up{target="default"} 1');
      expect(metrics).toContain('pgwarden_policy_info{target="default",policy="iit",kind="idle_in_transaction",mode="enforce"} 1');
      expect(metrics).toMatch(/pgwarden_policy_last_success_timestamp_seconds\{target="default",policy="iit"\} \d/);
      expect(metrics).toContain('process_resident_memory_bytes');
      const audit = stderr.split('\n').filter((l) => l.includes('"audit":true')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(audit.find((a) => a.pid === victim.pid)).toMatchObject({ policy: 'iit', action: 'terminate', result: 'done', role: app, dryRun: false, state: 'idle in transaction' });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toContain('"msg":"stopped"');
  });
});
