/** Metric hygiene: bounded cardinality, stale series removed, counters from zero. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { Metrics, rolesToKeep, SmallestByValue } from '../src/metrics/registry.js';
import { DISABLED_ROLE_SESSIONS } from '../src/policies/disabled-role.js';
import type { RoleInfo } from '../src/db/snapshot.js';
import { session } from './support/sessions.js';

const role = (name: string, validSeconds: number | null): RoleInfo => ({
  role: name,
  login: true,
  superuser: false,
  connLimit: -1,
  validUntil: null,
  validSeconds,
  memberOf: [],
  sessions: 0,
});

describe('SmallestByValue', () => {
  it('keeps what a full sort by (value, role) cut at max keeps, ties at the cut included, and the smallest of the rest', () => {
    // values with many ties, in a scrambled order; every cut position, including none and all
    const entries = Array.from({ length: 40 }, (_, i) => ({ role: `r${(i * 17) % 40}`, value: ((i * 7) % 5) - 2 }));
    for (let max = 0; max <= 41; max++) {
      const keep = rolesToKeep(entries, max, (a, b) => a.value - b.value || a.role.localeCompare(b.role));
      const rest = entries.filter((e) => !keep.has(e.role));
      const smallest = new SmallestByValue(max);
      for (const e of entries) smallest.offer(e.role, e.value);
      const got = smallest.result();
      expect(new Set(got.keep.map((e) => e.role))).toEqual(keep);
      expect(got.rest).toBe(rest.length);
      expect(got.restMin).toBe(rest.length > 0 ? Math.min(...rest.map((e) => e.value)) : null);
    }
  });
});

describe('Metrics', () => {
  it('caps per-role series, folding the rest into role="_other" and counting them', async () => {
    const metrics = new Metrics({ sessionLabels: [], maxRoleSeries: 2 });
    const sessions = [
      ...['a', 'a', 'a', 'b', 'b', 'c', 'd'].map((r) => session({ role: r, state: 'idle', database: 'shop' })),
      session({ role: 'x', backendType: 'autovacuum worker' }),
    ];
    metrics.recordSessions('default', sessions, new Set());
    metrics.recordRoles('default', [role('r1', 100), role('r2', -5), role('r3', 50), role('r4', 10), role('forever', null)]);
    metrics.recordRoleGauge(DISABLED_ROLE_SESSIONS, 'default', [
      { role: 'd1', value: 1 },
      { role: 'd2', value: 5 },
      { role: 'd3', value: 2 },
    ]);
    const text = await metrics.render();
    expect(text).toContain('pgwarden_sessions{target="default",database="shop",role="a",state="idle"} 3');
    expect(text).toContain('pgwarden_sessions{target="default",database="shop",role="b",state="idle"} 2');
    expect(text).toContain('pgwarden_sessions{target="default",database="shop",role="_other",state="idle"} 2');
    expect(text).not.toContain('role="c"');
    expect(text).toContain('pgwarden_role_series_folded{target="default",metric="pgwarden_sessions"} 2');
    // soonest expiries keep their series; _other is the soonest of the rest
    expect(text).toContain('pgwarden_role_valid_until_seconds{target="default",role="r2"} -5');
    expect(text).toContain('pgwarden_role_valid_until_seconds{target="default",role="r4"} 10');
    expect(text).toContain('pgwarden_role_valid_until_seconds{target="default",role="_other"} 50');
    expect(text).not.toContain('role="forever"');
    expect(text).toContain('pgwarden_disabled_role_sessions{target="default",role="_other"} 1');
    expect(text).toContain('pgwarden_disabled_role_sessions{target="default",role="d2"} 5');
  });

  it('exports lock waits per database, refined by the lock graph, and the oldest prepared transaction', async () => {
    const metrics = new Metrics();
    const waiter = session({ pid: 7, role: 'b', database: 'shop', state: 'active', waitEventType: 'Lock', waitEvent: 'transactionid', stateSeconds: 50 });
    metrics.recordSessions('default', [waiter, session({ pid: 8, database: 'shop' })], new Set());
    let text = await metrics.render();
    expect(text).toContain('pgwarden_blocked_sessions{target="default",database="shop"} 1');
    expect(text).toContain('pgwarden_lock_wait_oldest_seconds{target="default",database="shop"} 50');
    metrics.recordLocks('default', [waiter], {
      waits: new Map([[7, { pid: 7, blockedBy: [0], waitSeconds: 12.5 }]]),
      prepared: [{ gid: 'g1', database: 'shop', owner: 'app', ageSeconds: 3600 }],
    });
    text = await metrics.render();
    expect(text).toContain('pgwarden_lock_wait_oldest_seconds{target="default",database="shop"} 12.5');
    expect(text).toContain('pgwarden_prepared_xact_oldest_seconds{target="default",database="shop"} 3600');
  });

  it('adds the application label when configured, and drops series that are no longer observed', async () => {
    const metrics = new Metrics({ sessionLabels: ['application'], maxRoleSeries: 1000 });
    metrics.recordSessions('default', [session({ role: 'a', application: 'web', database: 'shop', state: 'active' })], new Set());
    expect(await metrics.render()).toContain('pgwarden_sessions{target="default",database="shop",role="a",state="active",application="web"} 1');
    metrics.recordSessions('default', [session({ role: 'b', application: 'etl', database: 'dw', state: 'idle' })], new Set());
    const text = await metrics.render();
    expect(text).not.toContain('role="a"');
    expect(text).toContain('role="b"');
    expect(text).not.toMatch(/pgwarden_session_oldest_seconds\{target="default",state="active"\}/);
  });

  it('creates every counter at 0 and one info series per policy at start; build info', async () => {
    const config = loadConfig(
      {},
      {
        PGWARDEN_POLICIES: JSON.stringify([
          { name: 'lq', kind: 'long_query', maxDuration: '1m', escalateAfter: '1m' },
          { name: 'dr', kind: 'disabled_role', disabledWhen: { nologin: true } },
        ]),
      },
    );
    const metrics = new Metrics(config.settings.metrics);
    metrics.initPolicies(['default'], config.policies, () => 'dry-run');
    const text = await metrics.render();
    for (const result of ['planned', 'done', 'gone', 'skipped', 'failed']) {
      expect(text).toContain(`pgwarden_actions_total{target="default",policy="lq",action="cancel",result="${result}"} 0`);
      expect(text).toContain(`pgwarden_actions_total{target="default",policy="lq",action="terminate",result="${result}"} 0`);
      expect(text).toContain(`pgwarden_actions_total{target="default",policy="dr",action="revoke_connect",result="${result}"} 0`);
    }
    expect(text).toContain('pgwarden_policy_errors_total{target="default",policy="dr"} 0');
    expect(text).toContain('pgwarden_policy_info{target="default",policy="lq",kind="long_query",mode="dry-run"} 1');
    expect(text).toMatch(/pgwarden_build_info\{version="\d+\.\d+\.\d+",node="v\d+/);
    // every metric has HELP text
    for (const line of text.split('\n').filter((l) => l.startsWith('# TYPE pgwarden_'))) {
      const name = line.split(' ')[2];
      expect(text).toMatch(new RegExp(`# HELP ${name} \\S`));
    }
  });
});
