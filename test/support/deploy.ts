/** What the shipped rules and dashboard query: the metric names they use. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function dashboardExpressions(): string[] {
  const dashboard = JSON.parse(readFileSync(`${ROOT}deploy/grafana/pgwarden.json`, 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}

export function ruleExpressions(): string[] {
  const rules = parse(readFileSync(`${ROOT}deploy/prometheus/rules.yaml`, 'utf8')) as { groups: { rules: { expr: string }[] }[] };
  return rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

/** pgwarden metric names an expression uses. */
export function metricNames(expr: string): string[] {
  return [...new Set(expr.match(/\bpgwarden_[a-z_]+\b/g) ?? [])];
}
