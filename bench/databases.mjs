// The many-databases case of npm run bench: `owned ROLE` and `offboard ROLE --reassign-to NEW
// --dry-run` for a role whose objects live in 3 databases, on a server with 1,000 databases and on
// one with only those 3 (and `postgres`). The commands run in-process through `runCli`, with
// captured streams, exactly as a user's invocation parses its flags, loads its configuration,
// opens its pool, reads, prints and closes it — only Node's start-up is left out, which is the
// same on both servers and not pgwarden's to make flat.
import pg from 'pg';

/** The role whose objects are looked for, and the one offboard would hand them to. */
export const OWNER = 'bench_tenant_owner';
export const HEIR = 'bench_tenant_heir';
/** The databases that hold the role's objects; the other tenants are named around them. */
export const TENANT_DATABASES = ['bench_tenant_0100', 'bench_tenant_0500', 'bench_tenant_0900'];
/** Per tenant database: 5 tables, a view and a function, each owned by OWNER. */
export const OBJECTS_PER_DATABASE = 7;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function urlOf(serverUrl, database) {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function withClient(url, fn) {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * The role, its heir and its 3 databases with identical objects (created as the superuser, then
 * given to the role, so the role holds no grant that would add entries of its own).
 */
export async function createTenantScene(serverUrl) {
  await withClient(serverUrl, async (admin) => {
    await admin.query(`create role ${OWNER} login password 'bench'`);
    await admin.query(`create role ${HEIR} nologin`);
    for (const d of TENANT_DATABASES) await admin.query(`create database ${d} template template0`);
  });
  for (const d of TENANT_DATABASES) {
    await withClient(urlOf(serverUrl, d), async (c) => {
      for (let i = 1; i <= 5; i++) {
        await c.query(`create table tenant_t${i} (id int primary key, body text, created timestamptz default now())`);
        await c.query(`alter table tenant_t${i} owner to ${OWNER}`);
      }
      await c.query('create view tenant_v as select t1.id, t1.body, t2.created from tenant_t1 t1 join tenant_t2 t2 using (id)');
      await c.query(`alter view tenant_v owner to ${OWNER}`);
      await c.query("create function tenant_f(n int) returns int language sql immutable as 'select n + 1'");
      await c.query(`alter function tenant_f(int) owner to ${OWNER}`);
    });
  }
}

/**
 * Creates empty databases `names` from template0, from `connections` sessions at once, then a
 * checkpoint, so that the measures after it do not share the disk with the write-out. WAL_LOG (the
 * default strategy) on purpose: in batches of 25 alternated on the bench machine, FILE_COPY, which
 * forces two checkpoints per database, took 21–1,145 ms per database from 4 sessions (15–34 from
 * 8), WAL_LOG 11–26 ms from 4 (16–84 from 2); turning fsync off did not make either faster (the
 * time is the kernel copying about 7 MB per database). Returns both times, in ms.
 */
export async function createEmptyDatabases(serverUrl, names, connections = 4) {
  const clients = [];
  try {
    for (let i = 0; i < connections; i++) {
      const c = new pg.Client(serverUrl);
      await c.connect();
      clients.push(c);
    }
    const t = performance.now();
    let next = 0;
    await Promise.all(
      clients.map(async (c) => {
        for (let i = next++; i < names.length; i = next++) await c.query(`create database ${names[i]} template template0 strategy wal_log`);
      }),
    );
    const created = performance.now();
    await clients[0].query('checkpoint');
    return { createMs: created - t, checkpointMs: performance.now() - created };
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}

/** Names for the empty tenants: bench_tenant_0000… around the 3 that hold objects, `count` of them. */
export function emptyTenantNames(count) {
  const names = [];
  for (let i = 0; names.length < count; i++) {
    const name = `bench_tenant_${String(i).padStart(4, '0')}`;
    if (!TENANT_DATABASES.includes(name)) names.push(name);
  }
  return names;
}

/** Databases a command may enter (not templates, connections allowed). */
export async function countDatabases(serverUrl) {
  return withClient(serverUrl, async (c) => Number((await c.query('select count(*) from pg_database where datallowconn and not datistemplate')).rows[0].count));
}

/** `pgwarden ARGS` against `serverUrl`, in-process through `runCli` with captured streams (as test/support/cli.ts). */
export function commandRunner(runCli, serverUrl) {
  return async (args) => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(args, {
      stdout: { write: (t) => (stdout += t) },
      stderr: { write: (t) => (stderr += t) },
      env: { PGWARDEN_DATABASE_URL: serverUrl },
      interactive: false,
      ask: () => Promise.resolve(''),
      readStdin: () => Promise.resolve(''),
      raiseExitCode: () => undefined,
    });
    return { code, stdout, stderr };
  };
}

export const OWNED_ARGS = ['owned', OWNER];
export const OFFBOARD_DRY_RUN_ARGS = ['offboard', OWNER, '--reassign-to', HEIR, '--dry-run'];

/**
 * Checks, with --json, that `run` (one server) gives the scene's answer: every object of the role
 * in its 3 databases, and a dry-run plan that reassigns in those 3 only. Returns the objects, sorted.
 */
export async function checkAnswers(run) {
  const owned = await run(['--json', ...OWNED_ARGS]);
  if (owned.code !== 0) throw new Error(`owned exited ${owned.code}: ${owned.stderr}`);
  const objects = JSON.parse(owned.stdout)
    .map((o) => `${o.database} ${o.type} ${o.schema} ${o.name}`)
    .sort();
  const expected = TENANT_DATABASES.length * OBJECTS_PER_DATABASE;
  if (objects.length !== expected) throw new Error(`owned listed ${objects.length} objects, expected ${expected}: ${owned.stdout}`);
  const offboard = await run(['--json', ...OFFBOARD_DRY_RUN_ARGS]);
  if (offboard.code !== 0) throw new Error(`offboard --dry-run exited ${offboard.code}: ${offboard.stdout} ${offboard.stderr}`);
  const plan = JSON.parse(offboard.stdout);
  const reassigned = plan.actions.filter((a) => a.action === 'reassign_owned').map((a) => a.database);
  if (reassigned.sort().join() !== TENANT_DATABASES.join()) throw new Error(`offboard --dry-run would reassign in ${reassigned.join(', ')}`);
  if (plan.actions.some((a) => a.result !== 'planned')) throw new Error(`offboard --dry-run did something: ${offboard.stdout}`);
  return objects;
}

/**
 * Medians of `few` and `many`, alternated at the same cadence, the first of each pair swapped on
 * every run so that neither always follows the pause or the other. Each call must exit 0.
 */
export async function measureAlternating(few, many, runs, cadenceMs) {
  const times = { few: [], many: [] };
  const once = async (name, fn) => {
    await sleep(cadenceMs);
    const t = performance.now();
    const { code, stderr } = await fn();
    times[name].push(performance.now() - t);
    if (code !== 0) throw new Error(`exit ${code} (${name} databases): ${stderr}`);
  };
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      await once('few', few);
      await once('many', many);
    } else {
      await once('many', many);
      await once('few', few);
    }
  }
  return { fewMs: median(times.few), manyMs: median(times.many), few: times.few, many: times.many };
}
