/** The Grafana dashboard: generated, valid Grafana JSON, and every query valid PromQL. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { dashboardExpressions } from '../support/deploy.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

interface Panel {
  type: string;
  id: number;
  title: string;
  datasource?: { uid: string };
  targets?: { expr: string; datasource: { uid: string } }[];
}

describe('deploy/grafana/pgwarden.json', () => {
  it('is what scripts/dashboard.mjs generates', () => {
    execFileSync(process.execPath, [`${root}scripts/dashboard.mjs`, '--check'], { stdio: 'pipe' });
  });

  it('is a Grafana dashboard: datasource as a variable, target/database/role variables, unique panel ids', () => {
    const d = JSON.parse(readFileSync(`${root}deploy/grafana/pgwarden.json`, 'utf8')) as {
      uid: string;
      title: string;
      schemaVersion: number;
      templating: { list: { name: string; type: string }[] };
      panels: Panel[];
    };
    expect(d.uid).toBe('pgwarden');
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(d.templating.list.map((v) => v.name)).toEqual(['datasource', 'target', 'database', 'role']);
    expect(d.templating.list[0]?.type).toBe('datasource');
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const titles = d.panels.map((p) => p.title);
    for (const t of ['Client sessions by state', 'Oldest session and transaction', 'Violations by policy', 'Actions by policy and result', 'Run duration (p95) by policy', 'Errors by policy', 'Login roles by days until expiry', 'Disabled roles with sessions', 'Sessions hidden from pgwarden', 'Lock pile-up roots reported (lock_blocker)']) {
      expect(titles).toContain(t);
    }
    for (const p of d.panels.filter((x) => x.type !== 'row')) {
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.datasource.uid).toBe('${datasource}');
    }
  });

  it('every query is valid PromQL (promtool, with the Grafana variables filled in)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgwarden-dash-'));
    try {
      const rules = {
        groups: [
          {
            name: 'dashboard',
            rules: dashboardExpressions().map((expr, i) => ({
              record: `dashboard:query_${i}`,
              expr: expr.replaceAll('$__rate_interval', '5m').replaceAll(/\$(target|database|role)/g, '.*'),
            })),
          },
        ],
      };
      writeFileSync(join(dir, 'dashboard-rules.yaml'), stringify(rules));
      const out = execFileSync('promtool', ['check', 'rules', join(dir, 'dashboard-rules.yaml')], { encoding: 'utf8' });
      expect(out).toMatch(/SUCCESS: \d+ rules found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
