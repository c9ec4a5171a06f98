/** The alert rules: promtool's syntax check and unit tests, and a runbook section for every alert. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../../', import.meta.url));
const rulesPath = `${root}deploy/prometheus/rules.yaml`;

interface Rule {
  alert: string;
  expr: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

function promtool(args: string[]): string {
  try {
    return execFileSync('promtool', args, { cwd: `${root}deploy/prometheus`, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('promtool is not installed: apt-get install prometheus (bash .ci/run does)');
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

const rules = (parse(readFileSync(rulesPath, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

describe('deploy/prometheus/rules.yaml', () => {
  it('passes promtool check rules', () => {
    expect(promtool(['check', 'rules', 'rules.yaml'])).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('passes its promtool unit tests (rules.test.yaml)', () => {
    expect(promtool(['test', 'rules', 'rules.test.yaml'])).toContain('SUCCESS');
  });

  it('has a unit test, severity, summary, description and a runbook section for every alert', () => {
    const tests = readFileSync(`${root}deploy/prometheus/rules.test.yaml`, 'utf8');
    const runbook = readFileSync(`${root}docs/runbook.md`, 'utf8');
    const anchors = new Set([...runbook.matchAll(/^## (\S+)$/gm)].map((m) => `docs/runbook.md#${m[1]!.toLowerCase()}`));
    for (const rule of rules) {
      expect(tests, rule.alert).toContain(`alertname: ${rule.alert}`);
      expect(['warning', 'critical']).toContain(rule.labels.severity);
      expect(rule.annotations.summary).toBeTruthy();
      expect(rule.annotations.description).toBeTruthy();
      expect(anchors, rule.alert).toContain(rule.annotations.runbook);
    }
  });
});
