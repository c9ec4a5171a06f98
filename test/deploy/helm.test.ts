/**
 * The Helm chart, as far as it can be tested without a helm binary: values against the schema,
 * the files parse, the copies of the rules and dashboard match deploy/, and values.config is a
 * configuration pgwarden accepts.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { spawnCli } from '../support/cli.js';
import { ROOT } from '../support/deploy.js';

const chart = `${ROOT}helm/pgwarden/`;
const values = parse(readFileSync(`${chart}values.yaml`, 'utf8')) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(`${chart}values.schema.json`, 'utf8')) as object;
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

describe('helm/pgwarden', () => {
  it('has the chart files: Chart.yaml, templates for every resource, NOTES.txt, README', () => {
    const meta = parse(readFileSync(`${chart}Chart.yaml`, 'utf8')) as { apiVersion: string; name: string; version: string; appVersion: string };
    expect(meta).toMatchObject({ apiVersion: 'v2', name: 'pgwarden' });
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };
    expect(meta.appVersion).toBe(pkg.version);
    const templates = readdirSync(`${chart}templates`).sort();
    for (const t of ['deployment.yaml', 'configmap.yaml', 'secret.yaml', 'service.yaml', 'serviceaccount.yaml', 'servicemonitor.yaml', 'prometheusrule.yaml', 'dashboard-configmap.yaml', 'NOTES.txt', '_helpers.tpl']) {
      expect(templates).toContain(t);
    }
    const deployment = readFileSync(`${chart}templates/deployment.yaml`, 'utf8');
    expect(deployment).toMatch(/path: \/healthz/);
    expect(deployment).toMatch(/path: \/readyz/);
    expect(readFileSync(`${chart}templates/configmap.yaml`, 'utf8')).toContain('toYaml .Values.config');
  });

  it('values.yaml passes values.schema.json, and bad values do not', () => {
    expect(validate(values), JSON.stringify(validate.errors)).toBe(true);
    const bad: Record<string, unknown>[] = [
      { ...values, replicaCount: 'two' },
      { ...values, unknownValue: true },
      { ...values, image: { repository: '' } },
      { ...values, config: { ...(values.config as object), mode: 'on' } },
      { ...values, config: { ...(values.config as object), server: { port: 70000 } } },
      { ...values, config: { ...(values.config as object), database: { url: 'postgres://in-the-configmap' } } },
      { ...values, service: { type: 'Ingress' } },
    ];
    for (const b of bad) expect(validate(b), JSON.stringify(b).slice(0, 120)).toBe(false);
  });

  it('keeps copies of the rules and the dashboard identical to deploy/', () => {
    expect(readFileSync(`${chart}files/rules.yaml`, 'utf8')).toBe(readFileSync(`${ROOT}deploy/prometheus/rules.yaml`, 'utf8'));
    expect(readFileSync(`${chart}files/pgwarden.json`, 'utf8')).toBe(readFileSync(`${ROOT}deploy/grafana/pgwarden.json`, 'utf8'));
    expect(parse(readFileSync(`${chart}files/rules.yaml`, 'utf8'))).toHaveProperty('groups');
    expect(JSON.parse(readFileSync(`${chart}files/pgwarden.json`, 'utf8'))).toHaveProperty('panels');
  });

  it('values.config passes pgwarden config check', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgwarden-helm-'));
    try {
      const file = join(dir, 'pgwarden.yaml');
      writeFileSync(file, stringify(values.config));
      const result = await spawnCli(['--config', file, 'config', 'check'], { PGWARDEN_DATABASE_URL: 'postgres://pgwarden:secret@db:5432/postgres' });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/configuration is valid: 3 policies/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
