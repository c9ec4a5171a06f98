#!/usr/bin/env node
// The 100,000-role scale of `npm run bench`, in a process of its own (so its RSS is pgwarden's
// alone): what a daemon with password_expiry, disabled_role and idle_session does at each tick,
// measured against the bare `select * from pg_roles` at the same cadence; RSS after 100 cycles;
// the same two while a role changes before every cycle (every column sent and decoded again);
// the /metrics scrape; and the audit log bytes per hour of a dry-run daemon on a 2-second
// schedule, with audit.repeatAfter at its default (1h) and at 1s (every tick, as before it).
// Usage: node --expose-gc bench/roles-scale-child.mjs URL RUNS CADENCE_MS; prints one JSON line.
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { loadConfig } from '../dist/config/load.js';
import { TargetDb } from '../dist/db/pool.js';
import { Engine } from '../dist/engine.js';
import { Metrics } from '../dist/metrics/registry.js';
import { interleave, memoryOver100Cycles } from './interleave.mjs';

const [url, runsText, cadenceText] = process.argv.slice(2);
const RUNS = Number(runsText);
const CADENCE_MS = Number(cadenceText);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const POLICIES = [
  { name: 'expiry', kind: 'password_expiry', schedule: '*/2 * * * * *', warnWithin: '14d' },
  { name: 'disabled', kind: 'disabled_role', schedule: '*/2 * * * * *', disabledWhen: { memberOf: 'pgwarden_disabled' }, actions: ['nologin'] },
  { name: 'idle', kind: 'idle_session', schedule: '*/2 * * * * *', maxIdle: '1h' },
];

/** An engine over `url` whose audit lines go to a byte counter; `clock` is injected. */
function engineWith(repeatAfter, clock) {
  let bytes = 0;
  const sink = new Writable({
    write(chunk, _encoding, done) {
      bytes += chunk.length;
      done();
    },
  });
  const config = loadConfig({}, { PGWARDEN_DATABASE_URL: url, PGWARDEN_POLICIES: JSON.stringify(POLICIES), PGWARDEN_AUDIT_REPEAT_AFTER: repeatAfter });
  const db = new TargetDb(config.targets[0], { connectTimeoutMs: 5000, statementTimeoutMs: 60000, poolSize: 3 }, pino({ level: 'silent' }));
  const metrics = new Metrics(config.settings.metrics);
  const engine = new Engine({ config, targets: [db], metrics, logger: pino({ level: 'info' }, sink), clock });
  return { engine, db, metrics, policies: config.policies, bytes: () => bytes };
}

const { engine, db, metrics, policies } = engineWith('1h', Date.now);
const cycle = async () => {
  const snaps = engine.freshSnapshots(db);
  for (const p of policies) await engine.runPolicy(db, p, snaps, 'dry-run');
};
const roleCycle = async () => {
  const snaps = engine.freshSnapshots(db);
  for (const p of policies.filter((p) => p.kind !== 'idle_session')) await engine.runPolicy(db, p, snaps, 'dry-run');
};
const bare = () => db.query('select * from pg_roles');

await cycle();
// Memory first, before the bare query has run here: what 100,000 rows parsed into objects leave
// in this process is the bare side's, not pgwarden's.
const { rss10, heap10, rss100, heap100, peak } = await memoryOver100Cycles(cycle);
const { cycleMs, bareMs } = await interleave(roleCycle, bare, RUNS, CADENCE_MS);

// The same while the roles change before every cycle (one role's expiry, to and fro): the server
// sends every column again and the cycle decodes them, where above it reuses the kept ones. The
// peak above was read before this; the one here is the process's whole run.
const admin = new pg.Client(url);
await admin.connect();
let flip = 0;
const changeARole = async () => {
  flip = 1 - flip;
  await admin.query(`alter role scale_r_1 valid until '${flip ? '2031-01-01' : '2032-01-01'}'`);
};
const changing = await interleave(roleCycle, bare, RUNS, CADENCE_MS, { beforeCycle: changeARole });
const changingMemory = await memoryOver100Cycles(async () => {
  await changeARole();
  await cycle();
});
await admin.end();
const scrapes = [];
for (let i = 0; i < 20; i++) {
  const t = performance.now();
  await metrics.render();
  scrapes.push(performance.now() - t);
}
await db.end();

// The audit log of a dry-run daemon, 2-second ticks on a clock that runs 2 s per tick: 60 ticks
// (2 minutes) with repeatAfter 1s logs every tick, as before it existed; with 1h, only the first.
async function logBytesPerHour(repeatAfter) {
  let now = Date.now();
  const run = engineWith(repeatAfter, () => now);
  const ticks = 60;
  for (let i = 0; i < ticks; i++) {
    const snaps = run.engine.freshSnapshots(run.db);
    for (const p of run.policies) await run.engine.runPolicy(run.db, p, snaps, 'dry-run');
    now += 2000;
  }
  await run.db.end();
  // Logged every tick (1s): 60 of an hour's 1,800 ticks, scaled. Once an hour (1h): what the
  // first tick logged is the hour's, the window holds no repeat.
  return Math.round(repeatAfter === '1s' ? run.bytes() * (1800 / ticks) : run.bytes());
}
const logBefore = await logBytesPerHour('1s');
const logAfter = await logBytesPerHour('1h');

console.log(
  JSON.stringify({
    roleCycle100kMs: cycleMs,
    roleBare100kMs: bareMs,
    rss100kMb: rss100 / 2 ** 20,
    rssPeak100kMb: peak / 2 ** 20,
    roleCycleChanged100kMs: changing.cycleMs,
    roleBareChanged100kMs: changing.bareMs,
    rssChanged100kMb: changingMemory.rss100 / 2 ** 20,
    rssPeakChanged100kMb: changingMemory.peak / 2 ** 20,
    rssGrowth100kMb: (rss100 - rss10) / 2 ** 20,
    heapGrowth100kMb: (heap100 - heap10) / 2 ** 20,
    scrape100kMs: median(scrapes),
    logBytesPerHour100kBefore: logBefore,
    logBytesPerHour100k: logAfter,
  }),
);
