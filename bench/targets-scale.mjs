// The 20-target scale of `npm run bench` (issue 19): 20 throwaway PostgreSQL 17 servers with 100
// client sessions each (half idle, 3 in 10 idle in transaction, 2 in 10 active), and the daemon
// itself (`pgwarden run`, a process of its own) with every session policy on a 1-second schedule
// in dry-run. Measured from its own /metrics: the mean policy run (pgwarden_policy_run_duration_
// seconds, snapshot included) with 20 targets against the same daemon with one; its RSS; and,
// with one target's server stopped whole by SIGSTOP (postmaster and backends: a host that hangs),
// the other targets' runs, which must neither slow down nor be skipped.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startServer } from '../scripts/embedded.mjs';
import { chartMemoryLimitBytes, inCgroup, memoryCgroup } from './memory-limit.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TARGETS = 20;
const SESSIONS_PER_TARGET = 100;
const WARMUP_MS = 6000;
const WINDOW_MS = 20000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every session kind, each on a 1-second schedule; limits low enough that most sessions violate one. */
const POLICIES = [
  { name: 'idle-in-transaction', kind: 'idle_in_transaction', maxIdle: '2s' },
  { name: 'idle-sessions', kind: 'idle_session', maxIdle: '2s' },
  { name: 'long-queries', kind: 'long_query', maxDuration: '2s', action: 'cancel' },
  { name: 'long-transactions', kind: 'long_transaction', maxDuration: '2s' },
  { name: 'lock-blockers', kind: 'lock_blocker', maxBlocked: '2s' },
  { name: 'connection-pressure', kind: 'connection_pressure', above: '50%', target: '40%', minIdle: '2s' },
  { name: 'app-quota', kind: 'connection_quota', per: 'role', max: 50, minIdle: '2s' },
].map((p) => ({ ...p, schedule: '* * * * * *' }));

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Sums of the run-duration histogram by target: `{ [target]: { sum, count } }` (seconds, runs). */
async function runDurations(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^pgwarden_policy_run_duration_seconds_(sum|count)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const target = /target="([^"]*)"/.exec(m[2])[1];
    out[target] ??= { sum: 0, count: 0 };
    out[target][m[1]] += Number(m[3]);
  }
  return out;
}

/** Whether the daemon's pgwarden_up says `target` is down. */
async function targetDown(port, target) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text.split('\n').some((l) => l === `pgwarden_up{target="${target}"} 0`);
}

/** Per target, the runs and mean run (ms) between two readings of runDurations. */
function between(before, after) {
  const out = {};
  for (const [target, a] of Object.entries(after)) {
    const b = before[target] ?? { sum: 0, count: 0 };
    const count = a.count - b.count;
    out[target] = { runs: count, meanMs: count > 0 ? ((a.sum - b.sum) / count) * 1000 : Number.NaN };
  }
  return out;
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** `pgwarden run` over `targets` ({name, url}); resolves once /metrics answers. */
async function startDaemon(targets, dir, cgroup) {
  const port = await freePort();
  const config = join(dir, `pgwarden-${targets.length}.json`);
  writeFileSync(config, JSON.stringify({ targets, server: { host: '127.0.0.1', port }, log: { level: 'warn' }, policies: POLICIES }));
  const [file, argv] = inCgroup(cgroup, process.execPath, [`${ROOT}dist/main.js`, '--config', config, 'run']);
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (c) => (log += c));
  child.stderr.on('data', (c) => (log += c));
  for (let i = 0; i < 100; i++) {
    try {
      await runDurations(port);
      break;
    } catch {
      await sleep(100);
    }
  }
  return {
    port,
    pid: child.pid,
    log: () => log,
    /** CPU time the daemon used so far (user + system), ms. */
    cpuMs: () => {
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
    },
    rssMb: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.on('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}

/** Runs and mean run per target over WINDOW_MS, after `warmupMs`. */
async function window(daemon, warmupMs) {
  await sleep(warmupMs);
  const before = await runDurations(daemon.port);
  const cpuBefore = daemon.cpuMs();
  await sleep(WINDOW_MS);
  const runs = between(before, await runDurations(daemon.port));
  return { runs, cpuPerSecondMs: ((daemon.cpuMs() - cpuBefore) * 1000) / WINDOW_MS };
}

/** The processes of an embedded server: its postmaster (postmaster.pid) and every child. */
function serverProcesses(server) {
  const postmaster = Number(readFileSync(join(server.dataDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const children = execFileSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  return [postmaster, ...children];
}

/** Measures the 20-target scale; `log` prints progress. Resolves with the results' keys. */
export async function measureTargetScale(log, { cgroup = null } = {}) {
  log(`${TARGETS} targets: ${TARGETS} servers of their own, ${SESSIONS_PER_TARGET} sessions each…`);
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-bench-targets-'));
  const servers = [];
  const stops = [];
  try {
    // Four at a time: initdb is the slow part, and the machine may have 2 cores.
    for (let i = 0; i < TARGETS; i += 4) {
      const started = await Promise.all(
        Array.from({ length: Math.min(4, TARGETS - i) }, () => startServer({ package: 'pg17', maxConnections: 130, postgresFlags: ['-c', 'shared_buffers=16MB'] })),
      );
      servers.push(...started);
      stops.push(...started.map((s) => () => s.stop()));
    }
    await Promise.all(
      servers.map(async (s) => {
        const admin = new pg.Client(s.url);
        await admin.connect();
        await admin.query("create role app login password 'bench'");
        await admin.end();
      }),
    );
    const load = spawn(process.execPath, [`${ROOT}bench/load.mjs`, JSON.stringify({ urls: servers.map((s) => s.url), count: TARGETS * SESSIONS_PER_TARGET, roles: ['app'] })], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    stops.push(() => new Promise((resolve) => (load.exitCode !== null ? resolve() : (load.on('exit', resolve), load.stdin.end()))));
    await new Promise((resolve, reject) => {
      let out = '';
      load.on('exit', (code) => reject(new Error(`load process exited with ${code}`)));
      load.stdout.on('data', (c) => {
        out += c;
        if (out.includes('READY ')) resolve();
      });
    });
    const targets = servers.map((s, i) => ({ name: `t${String(i + 1).padStart(2, '0')}`, url: s.url }));

    log('  the daemon with one target…');
    const one = await startDaemon(targets.slice(0, 1), dir, cgroup);
    const { runs: alone, cpuPerSecondMs: cpuOne } = await window(one, WARMUP_MS);
    await one.stop();

    log(`  the daemon with ${TARGETS} targets…`);
    const all = await startDaemon(targets, dir, cgroup);
    const { runs: together, cpuPerSecondMs: cpuAll } = await window(all, WARMUP_MS);
    const rss = all.rssMb();

    const hung = targets.at(-1).name;
    log(`  …and with ${hung}'s server stopped (SIGSTOP)…`);
    const pids = serverProcesses(servers.at(-1));
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    const stoppedAt = performance.now();
    let stopped;
    let downAfterS = null;
    try {
      ({ runs: stopped } = await window(all, 2000));
      // The hung target is shown down once its snapshot gives up: statement_timeout (30 s by
      // default) and the client's margin past it (db/pool.ts), not TCP keepalive's minutes.
      while (downAfterS === null && performance.now() - stoppedAt < 90_000) {
        if (await targetDown(all.port, hung)) downAfterS = (performance.now() - stoppedAt) / 1000;
        else await sleep(500);
      }
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
    const rssHung = all.rssMb();
    await all.stop();
    const others = targets.slice(0, -1).map((t) => t.name);
    const skipped = all
      .log()
      .split('\n')
      .filter((l) => l.includes('tick skipped') && !l.includes(`"target":"${hung}"`)).length;
    const expectedRuns = (WINDOW_MS / 1000 - 1) * POLICIES.length;
    return {
      targets1CycleMs: alone[targets[0].name].meanMs,
      targets20CycleMs: mean(Object.values(together).map((t) => t.meanMs)),
      // The daemon's CPU per second of wall time (user + system), ms: its load on the pod.
      targets1CpuMsPerS: cpuOne,
      targets20CpuMsPerS: cpuAll,
      rssTargets20Mb: Math.max(rss, rssHung),
      hungTargetCycleMs: mean(others.map((t) => stopped[t].meanMs)),
      hungTargetOthersCycleBeforeMs: mean(others.map((t) => together[t].meanMs)),
      // Every other target ran each policy once a second all along (one tick of slack for the window's edges).
      hungTargetOthersRunsMin: Math.min(...others.map((t) => stopped[t].runs)),
      hungTargetOthersRunsExpected: expectedRuns,
      hungTargetSkippedTicks: skipped,
      hungTargetRuns: stopped[hung]?.runs ?? 0,
      hungTargetDownAfterS: downAfterS,
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

// Run alone: node bench/targets-scale.mjs (prints the figures), the daemon under the chart's memory limit.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const cgroup = memoryCgroup(chartMemoryLimitBytes());
  try {
    console.log(JSON.stringify({ memoryLimitApplied: cgroup !== null, ...(await measureTargetScale((t) => process.stderr.write(`${t}\n`), { cgroup })) }, null, 2));
  } finally {
    cgroup?.close();
  }
}
