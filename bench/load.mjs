#!/usr/bin/env node
// Holds client sessions open for the benchmark, in its own process so that neither their sockets
// nor their memory count against the pgwarden process being measured.
// Usage: node bench/load.mjs '{"url": "...", "count": 1000, "mix": "mixed" | "idle", "roles": [...], "databases": [...]}'
// ("urls": [...] instead of "url": the sessions are dealt round the servers, count in all)
// Prints `READY <json array of pids>` when every session is in its state; exits when stdin closes.
import pg from 'pg';

const options = JSON.parse(process.argv[2]);
const apps = ['web', 'api', 'worker', 'report', 'psql'];
const clients = [];

function state(i) {
  if (options.mix === 'idle') return 'idle';
  // with several servers, each gets the same mix
  const r = Math.floor(i / (options.urls?.length ?? 1)) % 10;
  return r < 5 ? 'idle' : r < 8 ? 'idle in transaction' : 'active';
}

async function open(i) {
  const url = new URL(options.urls ? options.urls[i % options.urls.length] : options.url);
  const role = options.roles?.[i % options.roles.length];
  if (role) {
    url.username = role;
    url.password = 'bench';
  }
  const database = options.databases?.[i % options.databases.length];
  if (database) url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString(), application_name: apps[i % apps.length] });
  client.on('error', () => undefined);
  await client.connect();
  const s = state(i);
  if (s === 'idle in transaction') {
    await client.query('begin');
    await client.query('select 1');
  } else if (s === 'active') {
    client.query('select pg_sleep(3600)').catch(() => undefined);
  }
  clients.push(client);
  return client.processID;
}

const pids = [];
for (let i = 0; i < options.count; i += 50) {
  const batch = [];
  for (let j = i; j < Math.min(options.count, i + 50); j++) batch.push(open(j));
  pids.push(...(await Promise.all(batch)));
}
process.stdout.write(`READY ${JSON.stringify(pids)}\n`);
process.stdin.resume();
process.stdin.on('end', async () => {
  await Promise.allSettled(clients.map((c) => c.end()));
  process.exit(0);
});
