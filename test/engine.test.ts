/** The engine's contracts: one snapshot per target per tick, failures counted not thrown, audit lines. */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../src/config/load.js';
import { Engine } from '../src/engine.js';
import type { TargetDb } from '../src/db/pool.js';
import { Metrics } from '../src/metrics/registry.js';
import { testDatabaseUrl, useFixture } from './support/fixture.js';
import { testTarget } from './support/target.js';

const fixture = useFixture('engine');
const opened: TargetDb[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((db) => db.end()));
});

function setup(policies: unknown[], url = testDatabaseUrl(), extra: Record<string, unknown> = {}) {
  const config = loadConfig({}, { PGWARDEN_POLICIES: JSON.stringify(policies), PGWARDEN_DATABASE_URL: url, ...extra });
  const db = testTarget('default', url);
  opened.push(db);
  let out = '';
  const logger = pino({ level: 'info' }, { write: (s: string) => void (out += s) });
  const metrics = new Metrics();
  const engine = new Engine({ config, targets: [db], metrics, logger });
  metrics.initPolicies(['default'], config.policies, (p) => engine.modeOf(p));
  return { config, db, engine, metrics, log: () => out };
}

describe('Engine', () => {
  it('takes one snapshot per target per tick, shared by every policy due', () => {
    const { db, engine } = setup([]);
    const a = engine.snapshotsForTick(db, 1000);
    const b = engine.snapshotsForTick(db, 1000);
    const c = engine.snapshotsForTick(db, 1001);
    expect(b.sessions()).toBe(a.sessions());
    expect(b.roles()).toBe(a.roles());
    expect(c.sessions()).not.toBe(a.sessions());
    return Promise.all([a.sessions(), a.roles(), c.sessions()]);
  });

  it('survives an unreachable server: the run reports the error, counts it, sets pgwarden_up 0', async () => {
    const { db, engine, metrics, config } = setup(
      [{ name: 'idle', kind: 'idle_session', maxIdle: '1m' }],
      'postgres://nobody:secret@127.0.0.1:1/postgres',
    );
    const report = await engine.runPolicy(db, config.policies[0]!, engine.freshSnapshots(db), 'enforce');
    expect(report.error).toMatch(/ECONNREFUSED/);
    const text = await metrics.render();
    expect(text).toContain('pgwarden_up{target="default"} 0');
    expect(text).toContain('pgwarden_policy_errors_total{target="default",policy="idle"} 1');
    expect(engine.states.get('default')?.up).toBe(false);
  });

  it('writes one audit line per action, with the query only when audit.includeQuery is set', async () => {
    const f = fixture();
    const role = await f.createRole(f.name('app'));
    const s = await f.openSession({ role, state: 'idle in transaction' });
    await f.waitForAge([s.pid], 1);
    const policy = { name: 'iit', kind: 'idle_in_transaction', maxIdle: '1s', match: { roles: [role] } };
    for (const includeQuery of [false, true]) {
      const { db, engine, config, log } = setup([policy], testDatabaseUrl(), { PGWARDEN_AUDIT_INCLUDE_QUERY: String(includeQuery) });
      await engine.runPolicy(db, config.policies[0]!, engine.freshSnapshots(db), 'dry-run');
      const lines = log().split('\n').filter((l) => l.includes('"audit":true')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ pid: s.pid, result: 'planned', dryRun: true, policy: 'iit', role });
      expect(lines[0]!.query).toBe(includeQuery ? 'select 1' : undefined);
    }
  });
});
