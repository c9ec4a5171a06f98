/** Several targets: every result carries its target, and a dead or hanging one holds up no other. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { RunOutput } from '../src/cli/run.js';
import { cli, isolatedEnv } from './support/cli.js';
import { ROOT } from './support/deploy.js';
import { testDatabaseUrl, useFixture, waitFor } from './support/fixture.js';
import { freePort } from './support/net.js';

const fixture = useFixture('targets');
const dir = mkdtempSync(join(tmpdir(), 'pgwarden-targets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A server that accepts connections and never says a word: a hung network path. */
async function silentServer(): Promise<number> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => sockets.push(s));
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return port;
}

describe('several targets', () => {
  it('run --once: every violation and action carries its target; an unreachable target is reported, exit 1', async () => {
    const f = fixture();
    const app = await f.createRole(f.name('app'));
    const victim = await f.openSession({ role: app, state: 'idle in transaction' });
    await f.waitForAge([victim.pid], 1);
    const config = join(dir, `${f.prefix}.json`);
    writeFileSync(
      config,
      JSON.stringify({
        mode: 'enforce',
        database: { connectTimeout: '2s' },
        targets: [
          { name: 'main', url: testDatabaseUrl() },
          { name: 'gone', url: 'postgres://someone:secret@127.0.0.1:1/postgres' },
        ],
        policies: [
          { name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s', match: { roles: [app] } },
          { name: 'iit-gone-only', kind: 'idle_in_transaction', maxIdle: '1s', targets: ['gone'] },
        ],
      }),
    );
    const result = await cli(['--config', config, '--json', '--log-level', 'error', 'run', '--once']);
    expect(result.code).toBe(1);
    const out = JSON.parse(result.stdout) as RunOutput;
    expect(out.violations.map((v) => [v.target, v.policy, v.pid])).toEqual([['main', 'iit', victim.pid]]);
    expect(out.actions.map((a) => [a.target, a.policy, a.result])).toEqual([['main', 'iit', 'done']]);
    expect(out.errors?.join('\n')).toMatch(/^gone: .*ECONNREFUSED/);
    expect(result.stdout + result.stderr).not.toContain('secret');
  });

  it('the daemon keeps enforcing on a live target while another is down and a third hangs', async () => {
    const f = fixture();
    const app = await f.createRole(f.name('app'));
    const port = await freePort();
    const hanging = await silentServer();
    const config = join(dir, `${f.prefix}-daemon.json`);
    writeFileSync(
      config,
      JSON.stringify({
        mode: 'enforce',
        server: { host: '127.0.0.1', port },
        database: { connectTimeout: '20s' },
        leader: { pollInterval: '1s' },
        targets: [
          { name: 'main', url: testDatabaseUrl() },
          { name: 'down', url: 'postgres://someone@127.0.0.1:1/postgres' },
          { name: 'hung', url: `postgres://someone@127.0.0.1:${hanging}/postgres` },
        ],
        policies: [{ name: 'iit', kind: 'idle_in_transaction', schedule: '* * * * * *', maxIdle: '1s', match: { roles: [app] } }],
      }),
    );
    const child: ChildProcess = spawn(process.execPath, [`${ROOT}dist/main.js`, '--config', config, '--log-level', 'fatal', 'run'], {
      stdio: 'ignore',
      env: isolatedEnv(process.env),
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.on('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    );
    const base = `http://127.0.0.1:${port}`;
    // Ready as soon as one target answers, though the others never do.
    await waitFor(async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, 'ready with one live target', 20_000);
    const victim = await f.openSession({ role: app, state: 'idle in transaction' });
    await waitFor(async () => !(await f.alive(victim.pid)), 'the live target to be enforced', 15_000);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('pgwarden_up{target="main"} 1');
    expect(metrics).toContain('pgwarden_up{target="down"} 0');
    expect(metrics).toContain('pgwarden_leader{target="main"} 1');
    expect(metrics).toContain('pgwarden_actions_total{target="main",policy="iit",action="terminate",result="done"} 1');
    expect(metrics).toContain('pgwarden_actions_total{target="hung",policy="iit",action="terminate",result="done"} 0');
  });
});
