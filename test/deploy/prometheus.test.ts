/**
 * Proof against the real thing: pgwarden and a real Prometheus (Debian's package, on loopback,
 * a temporary data directory, a 1 s scrape) with the shipped rules loaded. Violations and actions
 * on the real PostgreSQL must arrive as series with the right labels, and an alert must go
 * pending/firing. And every metric the rules and the dashboard name must be one pgwarden exports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { quoteIdent } from '../../src/db/quote.js';
import { isolatedEnv } from '../support/cli.js';
import { dashboardExpressions, metricNames, ROOT, ruleExpressions } from '../support/deploy.js';
import { testDatabaseUrl, useFixture, waitFor } from '../support/fixture.js';
import { freePort } from '../support/net.js';

const fixture = useFixture('prom');
const dir = mkdtempSync(join(tmpdir(), 'pgwarden-prom-'));
const children: ChildProcess[] = [];

afterAll(async () => {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.on('exit', () => resolve());
          c.kill('SIGTERM');
        }),
    ),
  );
  rmSync(dir, { recursive: true, force: true });
});

function start(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: isolatedEnv(process.env) });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  child.on('exit', (code) => {
    if (code) process.stderr.write(`${command} exited with ${code}:\n${stderr}\n`);
  });
  children.push(child);
  return child;
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(prometheus: string, promql: string): Promise<Sample[]> {
  const res = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.json()) as { data: { result: Sample[] } };
  return body.data.result;
}

describe('pgwarden with a real Prometheus', () => {
  it('exports series Prometheus scrapes with the right labels, and the rules alert on them', async () => {
    const f = fixture();
    const marker = await f.createRole(f.name('disabled'), 'nologin');
    const leaver = await f.createRole(f.name('leaver'));
    await f.sql(`grant ${quoteIdent(marker)} to ${quoteIdent(leaver)}`);
    const soon = await f.createRole(f.name('soon'), `valid until '${new Date(Date.now() + 3 * 86_400_000).toISOString()}'`);
    const app = await f.createRole(f.name('app'));
    await f.openSession({ role: leaver, state: 'idle' });
    const victim = await f.openSession({ role: app, state: 'idle in transaction' });

    const pgwardenPort = await freePort();
    const config = join(dir, 'pgwarden.json');
    const only = { roles: [`${f.prefix}_*`] };
    writeFileSync(
      config,
      JSON.stringify({
        server: { host: '127.0.0.1', port: pgwardenPort },
        policies: [
          { name: 'iit', kind: 'idle_in_transaction', schedule: '* * * * * *', maxIdle: '1s', mode: 'enforce', match: only },
          { name: 'disabled', kind: 'disabled_role', schedule: '* * * * * *', match: only, disabledWhen: { memberOf: marker }, actions: ['terminate'] },
          { name: 'expiry', kind: 'password_expiry', schedule: '* * * * * *', match: only, warnWithin: '14d' },
          // Nobody waits on a lock here: its violations gauge must be there, at 0, with the labels the alert selects on.
          { name: 'blockers', kind: 'lock_blocker', schedule: '* * * * * *', match: only, maxBlocked: '1m' },
        ],
      }),
    );
    start(process.execPath, [`${ROOT}dist/main.js`, '--config', config, '--database-url', testDatabaseUrl(), '--log-level', 'warn', 'run']);

    const promPort = await freePort();
    writeFileSync(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [`${ROOT}deploy/prometheus/rules.yaml`],
        scrape_configs: [{ job_name: 'pgwarden', static_configs: [{ targets: [`127.0.0.1:${pgwardenPort}`] }] }],
      }),
    );
    start('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ]);
    const prometheus = `http://127.0.0.1:${promPort}`;
    await waitFor(async () => (await fetch(`${prometheus}/-/ready`).catch(() => undefined))?.ok, 'Prometheus to be ready', 30_000);

    // The disabled role's session, as a series with DESIGN.md's labels (and Prometheus's job/instance).
    const sessions = await waitFor(async () => {
      const r = await query(prometheus, `pgwarden_sessions{role="${leaver}"}`);
      return r.length > 0 && r;
    }, 'pgwarden_sessions of the disabled role', 30_000);
    expect(sessions[0]?.metric).toMatchObject({ job: 'pgwarden', target: 'default', database: 'postgres', role: leaver, state: 'idle' });
    expect(sessions[0]?.value[1]).toBe('1');

    // The termination done by the enforcing policy.
    await waitFor(async () => !(await f.alive(victim.pid)), 'the idle transaction to be terminated', 20_000);
    const done = await waitFor(async () => {
      const r = await query(prometheus, 'pgwarden_actions_total{policy="iit", action="terminate", result="done"}');
      return r.length > 0 && Number(r[0]!.value[1]) >= 1 && r;
    }, 'the terminate counter', 20_000);
    expect(done[0]?.metric).toMatchObject({ target: 'default', policy: 'iit', action: 'terminate', result: 'done' });

    const expiry = await waitFor(async () => {
      const r = await query(prometheus, `pgwarden_role_valid_until_seconds{role="${soon}"}`);
      return r.length > 0 && r;
    }, 'the expiry gauge', 20_000);
    expect(Number(expiry[0]!.value[1]) / 86_400).toBeCloseTo(3, 0);

    // Set on every session snapshot: 0 here, pgwarden connecting as the tests' superuser sees every session.
    const hidden = await waitFor(async () => {
      const r = await query(prometheus, 'pgwarden_sessions_hidden');
      return r.length > 0 && r;
    }, 'pgwarden_sessions_hidden', 20_000);
    expect(hidden.map((s) => s.metric)).toEqual([expect.objectContaining({ job: 'pgwarden', target: 'default' })]);
    expect(hidden[0]?.value[1]).toBe('0');

    // The lock_blocker violations gauge PgwardenLockPileUpUnresolved selects on (kind="lock_blocker"), at 0: no pile-up.
    const blockers = await waitFor(async () => {
      const r = await query(prometheus, 'pgwarden_policy_violations{kind="lock_blocker"}');
      return r.length > 0 && r;
    }, 'the lock_blocker violations gauge', 20_000);
    expect(blockers[0]?.metric).toMatchObject({ target: 'default', policy: 'blockers', kind: 'lock_blocker' });
    expect(blockers[0]?.value[1]).toBe('0');

    // Alerts from the shipped rules: pending (for: 5m) for the disabled role's session, firing for the expiry.
    const alerts = await waitFor(async () => {
      const res = await fetch(`${prometheus}/api/v1/alerts`);
      const body = (await res.json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } };
      const disabled = body.data.alerts.find((a) => a.labels.alertname === 'PgwardenDisabledRoleHasSessions' && a.labels.role === leaver);
      const expiring = body.data.alerts.find((a) => a.labels.alertname === 'PgwardenPasswordExpiringSoon' && a.labels.role === soon);
      return disabled && expiring && { disabled, expiring };
    }, 'the alerts', 30_000);
    expect(['pending', 'firing']).toContain(alerts.disabled.state);
    expect(alerts.disabled.labels).toMatchObject({ severity: 'critical', target: 'default' });
    expect(alerts.expiring.state).toBe('firing');
    // Nothing hidden and no pile-up: the two alerts that watch for them are not even pending.
    const quiet = ((await (await fetch(`${prometheus}/api/v1/alerts`)).json()) as { data: { alerts: { labels: Record<string, string> }[] } }).data.alerts;
    expect(quiet.filter((a) => ['PgwardenBlind', 'PgwardenLockPileUpUnresolved'].includes(a.labels.alertname!))).toEqual([]);

    // Every metric the rules and the dashboard use is one this pgwarden exports (from the live scrape).
    const scrape = await (await fetch(`http://127.0.0.1:${pgwardenPort}/metrics`)).text();
    // A gauge set on every snapshot has a sample, not only its # TYPE line.
    expect(scrape).toMatch(/^pgwarden_sessions_hidden\{target="default"\} 0$/m);
    const exported = new Map([...scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    for (const expr of [...ruleExpressions(), ...dashboardExpressions()]) {
      for (const name of metricNames(expr)) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        const known = exported.has(name) || (base !== name && exported.get(base) === 'histogram');
        expect(known, `${name} (in ${expr.trim()}) is not exported by pgwarden`).toBe(true);
      }
    }
  });
});
