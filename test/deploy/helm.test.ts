/**
 * The Helm chart, as far as it can be tested without a helm binary: values against the schema,
 * the files parse, the copies of the rules and dashboard match deploy/, values.config is a
 * configuration pgwarden accepts, and the chart rendered (by the small template interpreter at the
 * end of this file) gives the manifests it should: the directories' bind passwords only through
 * Secrets, their CAs mounted where the rendered configuration points.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { spawnCli, type CliResult } from '../support/cli.js';
import { ROOT } from '../support/deploy.js';

const chart = `${ROOT}helm/pgwarden/`;
const values = parse(readFileSync(`${chart}values.yaml`, 'utf8')) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(`${chart}values.schema.json`, 'utf8')) as object;
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

const DATABASE_URL = 'postgres://pgwarden:secret@db:5432/postgres';
const PASSWORD = 'Dir3ctory-bind-pa$$word';

type Container = {
  env: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
};
type Volume = { name: string; configMap?: { name: string; items?: { key: string; path: string }[] }; secret?: { secretName: string; items?: { key: string; path: string }[] } };
type DirectoryConfig = Record<string, unknown> & { name: string; tls?: { caFile?: string; insecureSkipVerify?: boolean } };

function podSpec(rendered: Rendered): { containers: [Container]; volumes: Volume[] } {
  return (rendered.get('Deployment') as unknown as { spec: { template: { spec: { containers: [Container]; volumes: Volume[] } } } }).spec.template.spec;
}

/** pgwarden's configuration as the chart writes it into the ConfigMap. */
function renderedConfig(rendered: Rendered): { directories?: DirectoryConfig[] } & Record<string, unknown> {
  return parse((rendered.get('ConfigMap', `${rendered.release}-pgwarden`) as unknown as { data: Record<string, string> }).data['pgwarden.yaml'] ?? '') as Record<string, unknown>;
}

/**
 * The container's environment as the kubelet would fill it: plain values, and secretKeyRefs
 * resolved from the Secrets the chart rendered or, for a Secret of the user's, from `theirs`.
 */
function containerEnv(rendered: Rendered, theirs: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of podSpec(rendered).containers[0].env) {
    const ref = e.valueFrom?.secretKeyRef;
    if (!ref) env[e.name] = e.value ?? '';
    else {
      const own = rendered.manifests.find((m) => m.kind === 'Secret' && m.metadata.name === ref.name) as { data?: Record<string, string>; stringData?: Record<string, string> } | undefined;
      const value = own ? (own.stringData?.[ref.key] ?? Buffer.from(own.data?.[ref.key] ?? '', 'base64').toString()) : theirs[`${ref.name}/${ref.key}`];
      if (value === undefined) throw new Error(`no value for ${e.name} (secret ${ref.name}, key ${ref.key})`);
      env[e.name] = value;
    }
  }
  return env;
}

/**
 * `pgwarden config check` on the rendered ConfigMap with the container's environment. A mounted
 * CA exists only in the pod: each tls.caFile is pointed at a local stand-in first.
 */
async function configCheck(rendered: Rendered, theirs: Record<string, string> = {}): Promise<CliResult> {
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-helm-'));
  try {
    const config = renderedConfig(rendered);
    const ca = join(dir, 'ca.crt');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n');
    for (const d of config.directories ?? []) if (d.tls?.caFile) d.tls.caFile = ca;
    const file = join(dir, 'pgwarden.yaml');
    writeFileSync(file, stringify(config));
    const env: Record<string, string> = { ...containerEnv(rendered, theirs), PGWARDEN_DATABASE_URL: DATABASE_URL };
    delete env.PGWARDEN_CONFIG;
    return await spawnCli(['--config', file, 'config', 'check'], env);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const corp = {
  name: 'corp',
  url: 'ldaps://ldap1.corp.example:636 ldaps://ldap2.corp.example:636',
  bindDN: 'cn=pgwarden,ou=services,dc=corp,dc=example',
  bindPassword: PASSWORD,
  baseDN: 'ou=people,dc=corp,dc=example',
  userFilter: '(objectClass=inetOrgPerson)',
  disabledFilter: '(employeeType=disabled)',
  roleAttribute: 'uid',
  roles: ['app_*'],
  refresh: '5m',
  minEntries: 10,
  tls: { insecureSkipVerify: false },
  ca: { configMap: { name: 'corp-ca', key: 'ca.crt' } },
  timeout: '10s',
};
const ad = {
  name: 'ad-Europe',
  url: 'ldaps://dc1.eu.corp.example:636',
  bindDN: 'CN=svc-pgwarden,OU=Service Accounts,DC=eu,DC=corp,DC=example',
  existingSecret: { name: 'pgwarden-ad', key: 'bind-password' },
  baseDN: 'OU=Staff,DC=eu,DC=corp,DC=example',
  userFilter: '(&(objectCategory=person)(objectClass=user))',
  disabledFilter: '(userAccountControl:1.2.840.113556.1.4.803:=2)',
  roleAttribute: 'sAMAccountName',
  ca: { secret: { name: 'corp-root-ca', key: 'tls.crt' } },
};
const anonymous = { name: 'public', url: 'ldap://ldap.public.example', baseDN: 'dc=public,dc=example', tls: { caFile: '/etc/ssl/certs/ca-certificates.crt' } };
const withDirectories = {
  database: { url: DATABASE_URL },
  config: {
    directories: [corp, ad, anonymous],
    policies: [
      { name: 'left-the-company', kind: 'disabled_role', disabledWhen: { directory: { name: 'corp', disabled: true, missing: true } } },
      { name: 'left-europe', kind: 'disabled_role', disabledWhen: { directory: { name: 'ad-Europe', disabled: true } } },
    ],
  },
};
/** `value` without `key`. */
function omit<T extends object>(value: T, key: keyof T): Omit<T, typeof key> {
  const { [key]: _, ...rest } = value;
  return rest;
}
const THEIRS = { 'pgwarden-ad/bind-password': 'their-ad-password' };

describe('helm/pgwarden', () => {
  it('has the chart files: Chart.yaml, templates for every resource, NOTES.txt, README', () => {
    const meta = parse(readFileSync(`${chart}Chart.yaml`, 'utf8')) as { apiVersion: string; name: string; version: string; appVersion: string };
    expect(meta).toMatchObject({ apiVersion: 'v2', name: 'pgwarden' });
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };
    expect(meta.appVersion).toBe(pkg.version);
    const templates = readdirSync(`${chart}templates`).sort();
    for (const t of ['deployment.yaml', 'configmap.yaml', 'secret.yaml', 'directory-secret.yaml', 'service.yaml', 'serviceaccount.yaml', 'servicemonitor.yaml', 'prometheusrule.yaml', 'dashboard-configmap.yaml', 'NOTES.txt', '_helpers.tpl']) {
      expect(templates).toContain(t);
    }
    const deployment = readFileSync(`${chart}templates/deployment.yaml`, 'utf8');
    expect(deployment).toMatch(/path: \/healthz/);
    expect(deployment).toMatch(/path: \/readyz/);
    expect(readFileSync(`${chart}templates/configmap.yaml`, 'utf8')).toContain('include "pgwarden.config" .');
    expect(readFileSync(`${chart}templates/_helpers.tpl`, 'utf8')).toContain('toYaml $config');
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

  it('values.schema.json takes directories with a password Secret and a CA, and refuses bad ones', () => {
    const directory = { name: 'corp', url: 'ldaps://ldap.corp.example', baseDN: 'dc=corp,dc=example' };
    const withDirectory = (d: object) => ({ ...values, config: { ...(values.config as object), directories: [d] } });
    for (const good of [directory, corp, ad, anonymous, { ...directory, url: 'LDAPS://ldap.corp.example' }, { ...directory, ca: { secret: { name: 'ca', key: 'ca.crt' } }, tls: { insecureSkipVerify: false } }]) {
      expect(validate(withDirectory(good)), JSON.stringify(validate.errors)).toBe(true);
    }
    const bad: object[] = [
      { ...directory, bindPassword: 'x', existingSecret: { name: 'ldap', key: 'password' } }, // which one?
      { ...directory, existingSecret: { name: 'ldap' } }, // no key
      { ...directory, existingSecret: 'ldap' },
      { ...directory, existingSecret: { name: 'Not_A_Name', key: 'password' } },
      { ...directory, existingSecret: { name: 'ldap', key: 'password', namespace: 'other' } },
      { ...directory, bindPassword: 12345 },
      { ...directory, bindPasswordFile: '/run/secrets/ldap' }, // nothing the chart mounts
      { ...directory, ca: {} },
      { ...directory, ca: { configMap: { name: 'ca', key: 'ca.crt' }, secret: { name: 'ca', key: 'ca.crt' } } },
      { ...directory, ca: { file: '/etc/ca.crt' } },
      { ...directory, ca: { configMap: { name: 'ca' } } },
      { ...directory, ca: { secret: { name: 'ca', key: 'ca.crt' } }, tls: { caFile: '/etc/ssl/ca.crt' } }, // which one?
      { ...directory, tls: { verify: false } },
      { ...directory, name: 'corp.example' },
      { ...directory, name: '1corp' },
      { ...directory, url: 'https://ldap.corp.example' },
      { ...directory, minEntries: 0 },
      { ...directory, baseDn: 'dc=corp,dc=example' }, // a typo is refused, not passed on
      { name: 'corp', url: 'ldap://ldap.corp.example' }, // no baseDN
    ];
    for (const b of bad) expect(validate(withDirectory(b)), JSON.stringify(b)).toBe(false);
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
      const result = await spawnCli(['--config', file, 'config', 'check'], { PGWARDEN_DATABASE_URL: DATABASE_URL });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/configuration is valid: 3 policies/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('renders the default values: values.config in the ConfigMap, the URL from the Secret, nothing for directories', async () => {
    const rendered = renderChart({ database: { url: DATABASE_URL } });
    expect(rendered.manifests.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual([
      'ConfigMap/prod-pgwarden',
      'Deployment/prod-pgwarden',
      'Secret/prod-pgwarden',
      'Service/prod-pgwarden',
      'ServiceAccount/prod-pgwarden',
    ]);
    expect(renderedConfig(rendered)).toEqual(values.config);
    const pod = podSpec(rendered);
    expect(pod.containers[0].env).toEqual([
      { name: 'PGWARDEN_CONFIG', value: '/etc/pgwarden/pgwarden.yaml' },
      { name: 'PGWARDEN_DATABASE_URL', valueFrom: { secretKeyRef: { name: 'prod-pgwarden', key: 'url' } } },
    ]);
    expect(pod.volumes.map((v) => v.name)).toEqual(['config', 'tmp']);
    expect(rendered.get('Deployment').spec).toHaveProperty(['template', 'metadata', 'annotations', 'checksum/config'], expect.stringMatching(/^[0-9a-f]{64}$/));
    expect(JSON.stringify(rendered.get('Deployment'))).not.toContain('checksum/directory-secret');
    const result = await configCheck(rendered);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // The optional resources render too.
    const all = renderChart({ database: { existingSecret: 'pgwarden-db' }, serviceMonitor: { enabled: true }, prometheusRule: { enabled: true }, grafanaDashboard: { enabled: true } });
    expect(all.manifests.map((m) => m.kind).sort()).toEqual(['ConfigMap', 'ConfigMap', 'Deployment', 'PrometheusRule', 'Service', 'ServiceAccount', 'ServiceMonitor']);
    expect(podSpec(all).containers[0].env[1]).toEqual({ name: 'PGWARDEN_DATABASE_URL', valueFrom: { secretKeyRef: { name: 'pgwarden-db', key: 'url' } } });
  });

  it('gives each directory its bind password from a Secret, as PGWARDEN_DIRECTORY_<NAME>_BIND_PASSWORD, never in the ConfigMap', () => {
    const rendered = renderChart(withDirectories);
    const configMap = rendered.files['configmap.yaml'];
    expect(configMap).not.toContain(PASSWORD);
    expect(configMap).not.toContain(Buffer.from(PASSWORD).toString('base64'));
    expect(configMap).not.toMatch(/bindPassword|existingSecret|pgwarden-ad|\bca:|corp-ca|corp-root-ca/);
    expect(rendered.files['deployment.yaml']).not.toContain(PASSWORD);
    // The chart's own keys are taken out; everything else reaches pgwarden as written.
    const directories = renderedConfig(rendered).directories ?? [];
    const strip = ({ bindPassword: _p, existingSecret: _s, ca: _c, tls: _t, ...rest }: Record<string, unknown>) => rest;
    expect(directories.map(strip)).toEqual([corp, ad, anonymous].map(strip));

    const env = podSpec(rendered).containers[0].env.filter((e) => e.name.startsWith('PGWARDEN_DIRECTORY_'));
    expect(env).toEqual([
      { name: 'PGWARDEN_DIRECTORY_CORP_BIND_PASSWORD', valueFrom: { secretKeyRef: { name: 'prod-pgwarden-directories', key: 'PGWARDEN_DIRECTORY_CORP_BIND_PASSWORD' } } },
      { name: 'PGWARDEN_DIRECTORY_AD_EUROPE_BIND_PASSWORD', valueFrom: { secretKeyRef: { name: 'pgwarden-ad', key: 'bind-password' } } },
    ]);
    // The chart's Secret holds the values' bindPassword and nothing else.
    const secret = rendered.get('Secret', 'prod-pgwarden-directories') as unknown as { type: string; data: Record<string, string> };
    expect(secret.type).toBe('Opaque');
    expect(Object.keys(secret.data)).toEqual(['PGWARDEN_DIRECTORY_CORP_BIND_PASSWORD']);
    expect(Buffer.from(secret.data.PGWARDEN_DIRECTORY_CORP_BIND_PASSWORD ?? '', 'base64').toString()).toBe(PASSWORD);
    expect(containerEnv(rendered, THEIRS)).toMatchObject({ PGWARDEN_DIRECTORY_CORP_BIND_PASSWORD: PASSWORD, PGWARDEN_DIRECTORY_AD_EUROPE_BIND_PASSWORD: 'their-ad-password' });

    // No hash of the password in a pod annotation: anyone who may read pods could guess it offline.
    const annotations = (r: Rendered) => (r.get('Deployment').spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations;
    expect(Object.keys(annotations(rendered))).toEqual(['checksum/config']);
    // Only an existingSecret: no chart Secret for directories.
    const theirsOnly = renderChart({ ...withDirectories, config: { ...withDirectories.config, directories: [{ ...omit(corp, 'bindPassword'), existingSecret: { name: 'ldap', key: 'pw' } }, ad, anonymous] } });
    expect(theirsOnly.manifests.filter((m) => m.kind === 'Secret').map((m) => m.metadata.name)).toEqual(['prod-pgwarden']);
  });

  it('mounts each directory CA read-only from its ConfigMap or Secret and points tls.caFile at it', () => {
    const rendered = renderChart(withDirectories);
    const pod = podSpec(rendered);
    const [corpOut, adOut, anonymousOut] = renderedConfig(rendered).directories as [DirectoryConfig, DirectoryConfig, DirectoryConfig];
    expect(corpOut.tls).toEqual({ insecureSkipVerify: false, caFile: '/etc/pgwarden-directories/corp/ca.crt' });
    expect(adOut.tls).toEqual({ caFile: '/etc/pgwarden-directories/ad-Europe/ca.crt' });
    expect(anonymousOut.tls).toEqual({ caFile: '/etc/ssl/certs/ca-certificates.crt' }); // a path in the image, left alone

    const caVolumes = pod.volumes.filter((v) => v.name.startsWith('directory-ca-'));
    expect(caVolumes).toEqual([
      { name: 'directory-ca-0', configMap: { name: 'corp-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      { name: 'directory-ca-1', secret: { secretName: 'corp-root-ca', items: [{ key: 'tls.crt', path: 'ca.crt' }] } },
    ]);
    const mounts = pod.containers[0].volumeMounts;
    expect(mounts.filter((m) => m.name.startsWith('directory-ca-'))).toEqual([
      { name: 'directory-ca-0', mountPath: '/etc/pgwarden-directories/corp', readOnly: true },
      { name: 'directory-ca-1', mountPath: '/etc/pgwarden-directories/ad-Europe', readOnly: true },
    ]);
    // Each caFile the chart set is the one file its volume projects, under its mount.
    for (const [i, d] of [corpOut, adOut].entries()) {
      const mount = mounts.find((m) => m.name === `directory-ca-${i}`);
      const volume = caVolumes[i];
      const item = (volume?.configMap ?? volume?.secret)?.items?.[0];
      expect(`${mount?.mountPath}/${item?.path}`).toBe(d.tls?.caFile);
    }
    // Every volume mounted exists, once; no CA mount inside the ConfigMap's /etc/pgwarden.
    expect(new Set(mounts.map((m) => m.name))).toEqual(new Set(pod.volumes.map((v) => v.name)));
    expect(mounts.filter((m) => m.mountPath.startsWith('/etc/pgwarden/'))).toEqual([]);
  });

  it('renders a configuration with directories that passes pgwarden config check, the password from the Secret', async () => {
    const rendered = renderChart(withDirectories);
    const result = await configCheck(rendered, THEIRS);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/configuration is valid: 2 policies/);
    expect(result.stdout).not.toContain(PASSWORD);
    // Without the Secret's variable, pgwarden refuses the bindDN: the password comes from there.
    const unresolved = await configCheck(renderChart({ ...withDirectories, config: { ...withDirectories.config, directories: [omit(corp, 'bindPassword')], policies: [] } }));
    expect(unresolved.code).not.toBe(0);
    expect(unresolved.stderr).toMatch(/bindPassword.*PGWARDEN_DIRECTORY_CORP_BIND_PASSWORD/);
  });

  it('refuses two directories that would read the same variable', () => {
    const clash = { ...withDirectories, config: { directories: [{ ...anonymous, name: 'eu-west' }, { ...anonymous, name: 'EU_west' }] } };
    expect(() => renderChart(clash)).toThrow(/"eu-west" and "EU_west" would both read their bind password from PGWARDEN_DIRECTORY_EU_WEST_BIND_PASSWORD/);
  });

  it("the README's values files render and pass pgwarden config check", async () => {
    const readme = readFileSync(`${chart}README.md`, 'utf8');
    const examples = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1] ?? '') as Record<string, unknown>);
    const withDirectoryExamples = examples.filter((e) => JSON.stringify(e).includes('"directories"'));
    expect(withDirectoryExamples.length).toBeGreaterThanOrEqual(2); // OpenLDAP and Active Directory
    for (const example of examples) {
      const rendered = renderChart(example);
      // Their own Secrets hold something; the chart's are read from the rendered manifests.
      const theirs = new Proxy({}, { get: () => 'from-their-secret' }) as Record<string, string>;
      const result = await configCheck(rendered, theirs);
      expect(result.stderr, stringify(example)).toBe('');
      expect(result.code).toBe(0);
      for (const d of renderedConfig(rendered).directories ?? []) {
        expect(d).not.toHaveProperty('bindPassword');
        expect(containerEnv(rendered, theirs)).toHaveProperty(`PGWARDEN_DIRECTORY_${d.name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_BIND_PASSWORD`);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Rendering without helm: a small interpreter of Go's text/template with the Sprig and Helm
// functions this chart uses (helm itself cannot be installed here). It follows Go's semantics
// where the chart depends on them — trim markers, truthiness, scopes of variables, `range` over
// sorted map keys, errors on a field of nil — and fails loudly on anything it does not know, so a
// template using more than it understands fails this test instead of passing it unrendered.
// ---------------------------------------------------------------------------------------------
type Dict = Record<string, unknown>;
type Pipe = { decl: string[]; assign: boolean; cmds: Operand[][] };
type Operand =
  | { t: 'lit'; v: unknown }
  | { t: 'fn'; name: string }
  | { t: 'field'; base: string | Pipe; path: string[] }; // base: '.' (dot), '$name', or a parenthesised pipe
type TplNode =
  | { t: 'text'; text: string }
  | { t: 'action'; pipe: Pipe }
  | { t: 'if' | 'with' | 'range'; pipe: Pipe; then: TplNode[]; else: TplNode[] }
  | { t: 'template'; name: string; pipe: Pipe | undefined };

/** `list[i]`, which must exist. */
function at<T>(list: readonly T[], i: number): T {
  if (i < 0 || i >= list.length) throw new Error(`index ${i} out of range`);
  return list[i] as T;
}
const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);
const truth = (v: unknown) =>
  !(v === undefined || v === null || v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0) || (isDict(v) && Object.keys(v).length === 0));
function show(v: unknown): string {
  if (v === undefined || v === null) return ''; // Helm prints "<no value>" as nothing
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  if (isDict(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${show(v[k])}`).join(' ')}]`;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new Error(`cannot print a ${typeof v}`);
}

/** The template's text and actions, trim markers applied and comments dropped. */
function lexTemplate(src: string, file: string): ({ text: string } | { action: string })[] {
  const out: ({ text: string } | { action: string })[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      out.push({ text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let j = open + 2;
    if (/^-\s/.test(src.slice(j, j + 2))) {
      text = text.replace(/\s+$/, '');
      j += 1;
    }
    out.push({ text });
    let k = j;
    const comment = /^\s*\/\*/.test(src.slice(j));
    if (comment) {
      k = src.indexOf('*/', j) + 2;
      if (k < 2) throw new Error(`${file}: unclosed comment`);
      const close = /^(\s+-)?\}\}/.exec(src.slice(k)) ?? /^\s*\}\}/.exec(src.slice(k));
      if (!close) throw new Error(`${file}: a comment must end at its action's end`);
      k += close[0].length - 2;
    } else {
      for (; k < src.length; k++) {
        if (src[k] === '"') {
          for (k++; src[k] !== '"'; k++) {
            if (src[k] === '\\') k++;
            if (k >= src.length) throw new Error(`${file}: unclosed string`);
          }
        } else if (src[k] === '`') k = src.indexOf('`', k + 1);
        else if (src.startsWith('}}', k)) break;
      }
      if (k >= src.length || k < 0) throw new Error(`${file}: unclosed action`);
    }
    const trimRight = src[k - 1] === '-' && /\s/.test(src[k - 2] ?? '');
    if (!comment) out.push({ action: src.slice(j, trimRight ? k - 1 : k).trim() });
    i = k + 2;
    if (trimRight) while (i < src.length && /\s/.test(src.charAt(i))) i++;
  }
  return out;
}

type Tok = { k: string; v?: unknown; path?: string[]; adj?: boolean };
function lexAction(src: string): Tok[] {
  const toks: Tok[] = [];
  const re = /\s+|("(?:[^"\\]|\\.)*")|(`[^`]*`)|(:=)|([=(),|])|(-?\d+(?:\.\d+)?)(?![\w.])|(\$\w*)((?:\.\w+)*)|((?:\.\w+)+|\.)|([A-Za-z_]\w*)/y;
  let m: RegExpExecArray | null;
  let last = -1;
  while (re.lastIndex < src.length) {
    const at = re.lastIndex;
    if (!(m = re.exec(src))) throw new Error(`cannot read ${JSON.stringify(src.slice(at))} in {{ ${src} }}`);
    if (/^\s/.test(m[0])) continue;
    const adj = at === last; // `(pipe).field` has no space before the field
    last = re.lastIndex;
    if (m[1]) toks.push({ k: 'lit', v: JSON.parse(m[1]) });
    else if (m[2]) toks.push({ k: 'lit', v: m[2].slice(1, -1) });
    else if (m[3] || m[4]) toks.push({ k: m[3] ?? m[4] ?? '' });
    else if (m[5]) toks.push({ k: 'lit', v: Number(m[5]) });
    else if (m[6]) toks.push({ k: 'var', v: m[6], path: m[7] ? m[7].slice(1).split('.') : [] });
    else if (m[8]) toks.push({ k: 'field', path: m[8] === '.' ? [] : m[8].slice(1).split('.'), adj });
    else if (m[9]) toks.push(m[9] === 'true' || m[9] === 'false' ? { k: 'lit', v: m[9] === 'true' } : m[9] === 'nil' ? { k: 'lit', v: null } : { k: 'id', v: m[9] });
  }
  return toks;
}

function parsePipe(toks: Tok[], pos = 0): [Pipe, number] {
  const pipe: Pipe = { decl: [], assign: false, cmds: [] };
  const declEnd = toks.findIndex((t, i) => i >= pos && (t.k === ':=' || t.k === '='));
  if (declEnd > pos && toks.slice(pos, declEnd).every((t) => t.k === 'var' || t.k === ',')) {
    pipe.decl = toks.slice(pos, declEnd).filter((t) => t.k === 'var').map((t) => t.v as string);
    pipe.assign = at(toks, declEnd).k === '=';
    pos = declEnd + 1;
  }
  let cmd: Operand[] = [];
  for (; pos < toks.length && at(toks, pos).k !== ')'; pos++) {
    const tok = at(toks, pos);
    if (tok.k === '|') {
      pipe.cmds.push(cmd);
      cmd = [];
    } else if (tok.k === '(') {
      const [inner, close] = parsePipe(toks, pos + 1);
      pos = close;
      const next = toks[pos + 1];
      if (next?.k === 'field' && next.adj) {
        cmd.push({ t: 'field', base: inner, path: next.path ?? [] });
        pos++;
      } else cmd.push({ t: 'field', base: inner, path: [] });
    } else if (tok.k === 'lit') cmd.push({ t: 'lit', v: tok.v });
    else if (tok.k === 'id') cmd.push({ t: 'fn', name: tok.v as string });
    else if (tok.k === 'field') cmd.push({ t: 'field', base: '.', path: tok.path ?? [] });
    else if (tok.k === 'var') cmd.push({ t: 'field', base: tok.v as string, path: tok.path ?? [] });
    else throw new Error(`unexpected ${tok.k}`);
  }
  if (cmd.length > 0) pipe.cmds.push(cmd);
  return [pipe, pos];
}

class GoTemplates {
  private readonly defines = new Map<string, TplNode[]>();

  /** Parses a file: its `define`s become templates, its top level the template named `name`. */
  add(name: string, src: string): void {
    const pieces = lexTemplate(src, name);
    let pos = 0;
    const list = (): { nodes: TplNode[]; stop: string } => {
      const nodes: TplNode[] = [];
      while (pos < pieces.length) {
        const piece = at(pieces, pos++);
        if ('text' in piece) {
          nodes.push({ t: 'text', text: piece.text });
          continue;
        }
        const [word, rest] = [piece.action.split(/\s/, 1)[0] ?? '', piece.action.replace(/^\S+\s*/, '')];
        if (word === 'end' || word === 'else') return { nodes, stop: piece.action };
        if (word === 'if' || word === 'with' || word === 'range') nodes.push(control(word, rest));
        else if (word === 'define') {
          const body = list();
          if (body.stop !== 'end') throw new Error(`${name}: define ends with {{ ${body.stop} }}`);
          this.defines.set(JSON.parse(rest) as string, body.nodes);
        } else if (word === 'template') {
          const toks = lexAction(rest);
          nodes.push({ t: 'template', name: at(toks, 0).v as string, pipe: toks.length > 1 ? parsePipe(toks, 1)[0] : undefined });
        } else if (['block', 'break', 'continue'].includes(word)) throw new Error(`${name}: {{ ${word} }} is not supported by this test's renderer`);
        else nodes.push({ t: 'action', pipe: parsePipe(lexAction(piece.action))[0] });
      }
      return { nodes, stop: '' };
    };
    const control = (kind: 'if' | 'with' | 'range', src: string): TplNode => {
      const pipe = parsePipe(lexAction(src))[0];
      const then = list();
      if (then.stop === 'end') return { t: kind, pipe, then: then.nodes, else: [] };
      if (then.stop === 'else') {
        const otherwise = list();
        if (otherwise.stop !== 'end') throw new Error(`${name}: {{ else }} ends with {{ ${otherwise.stop} }}`);
        return { t: kind, pipe, then: then.nodes, else: otherwise.nodes };
      }
      const chained = /^else\s+(if|with)\s+(.*)$/s.exec(then.stop);
      if (!chained) throw new Error(`${name}: {{ ${kind} }} ends with {{ ${then.stop || 'EOF'} }}`);
      return { t: kind, pipe, then: then.nodes, else: [control(chained[1] as 'if' | 'with', chained[2] ?? '')] };
    };
    const top = list();
    if (top.stop) throw new Error(`${name}: unexpected {{ ${top.stop} }}`);
    this.defines.set(name, top.nodes);
  }

  render(name: string, dot: unknown, root: unknown = dot): string {
    const nodes = this.defines.get(name);
    if (!nodes) throw new Error(`no template ${JSON.stringify(name)}`);
    try {
      return this.exec(nodes, dot, [new Map<string, unknown>([['$', root]])]);
    } catch (err) {
      const message = (err as Error).message;
      throw new Error(message.startsWith('execution error') ? message : `${name}: ${message}`, { cause: err });
    }
  }

  private exec(nodes: TplNode[], dot: unknown, scopes: Map<string, unknown>[]): string {
    let out = '';
    for (const node of nodes) {
      if (node.t === 'text') out += node.text;
      else if (node.t === 'action') {
        const v = this.pipe(node.pipe, dot, scopes);
        if (node.pipe.decl.length === 0) out += show(v);
      } else if (node.t === 'template') out += this.render(node.name, node.pipe ? this.pipe(node.pipe, dot, scopes) : null, at(scopes, 0).get('$'));
      else {
        const inner = [...scopes, new Map<string, unknown>()];
        if (node.t === 'range') {
          const decl = node.pipe.decl;
          const v = this.pipe({ ...node.pipe, decl: [] }, dot, inner);
          const items: [unknown, unknown][] = Array.isArray(v)
            ? v.map((x, i) => [i, x])
            : isDict(v)
              ? Object.keys(v).sort().map((k) => [k, v[k]])
              : typeof v === 'number'
                ? Array.from({ length: v }, (_, i) => [i, i])
                : [];
          if (v !== null && v !== undefined && !Array.isArray(v) && !isDict(v) && typeof v !== 'number') throw new Error(`range can't iterate over ${show(v)}`);
          if (items.length === 0) out += this.exec(node.else, dot, inner);
          for (const [key, item] of items) {
            const [first, second] = decl;
            const scope = new Map<string, unknown>(second !== undefined && first !== undefined ? [[first, key], [second, item]] : first !== undefined ? [[first, item]] : []);
            out += this.exec(node.then, item, [...inner, scope]);
          }
        } else {
          const v = this.pipe(node.pipe, dot, inner);
          if (truth(v)) out += this.exec(node.then, node.t === 'with' ? v : dot, inner);
          else out += this.exec(node.else, dot, inner);
        }
      }
    }
    return out;
  }

  private pipe(pipe: Pipe, dot: unknown, scopes: Map<string, unknown>[]): unknown {
    let value: unknown;
    pipe.cmds.forEach((cmd, i) => (value = this.command(cmd, dot, scopes, i === 0 ? [] : [value])));
    if (pipe.decl.length > 1) throw new Error('two variables only in range');
    if (pipe.decl.length === 1) {
      const name = at(pipe.decl, 0);
      if (!pipe.assign) at(scopes, scopes.length - 1).set(name, value);
      else {
        const scope = [...scopes].reverse().find((s) => s.has(name));
        if (!scope) throw new Error(`undefined variable ${name}`);
        scope.set(name, value);
      }
    }
    return value;
  }

  private command(cmd: Operand[], dot: unknown, scopes: Map<string, unknown>[], piped: unknown[]): unknown {
    const first = at(cmd, 0);
    const rest = cmd.slice(1);
    const arg = (o: Operand) => this.operand(o, dot, scopes);
    if (first.t === 'fn') {
      if (first.name === 'and' || first.name === 'or') {
        // Go evaluates them lazily: the first falsy (and) or truthy (or) argument, else the last.
        const args = [...rest.map((o) => () => arg(o)), ...piped.map((p) => () => p)];
        let v: unknown;
        for (const get of args) if (((v = get()), first.name === 'and' ? !truth(v) : truth(v))) return v;
        return v;
      }
      const fn = this.funcs[first.name] as ((...a: unknown[]) => unknown) | undefined;
      if (!fn) throw new Error(`function ${JSON.stringify(first.name)} not defined (for this test's renderer)`);
      return fn(...rest.map(arg), ...piped);
    }
    if (first.t === 'field' && first.path.length > 0) {
      const owner = this.resolve({ ...first, path: first.path.slice(0, -1) }, dot, scopes);
      const method = isDict(owner) ? owner[at(first.path, first.path.length - 1)] : undefined;
      if (typeof method === 'function') return (method as (...a: unknown[]) => unknown).call(owner, ...rest.map(arg), ...piped);
    }
    if (rest.length > 0 || piped.length > 0) throw new Error('cannot give arguments to a non-function');
    return arg(first);
  }

  private operand(o: Operand, dot: unknown, scopes: Map<string, unknown>[]): unknown {
    if (o.t === 'lit') return o.v;
    if (o.t === 'fn') return this.command([o], dot, scopes, []);
    return this.resolve(o, dot, scopes);
  }

  private resolve(o: Extract<Operand, { t: 'field' }>, dot: unknown, scopes: Map<string, unknown>[]): unknown {
    let v: unknown;
    if (typeof o.base !== 'string') v = this.pipe(o.base, dot, scopes);
    else if (o.base === '.') v = dot;
    else {
      const scope = [...scopes].reverse().find((s) => s.has(o.base as string));
      if (!scope) throw new Error(`undefined variable ${o.base}`);
      v = scope.get(o.base);
    }
    for (const name of o.path) {
      if (v === undefined || v === null) throw new Error(`nil pointer evaluating interface {}.${name}`);
      if (!isDict(v)) throw new Error(`can't evaluate field ${name} in ${show(v)}`);
      v = v[name] ?? null;
    }
    return v;
  }

  private readonly funcs: Record<string, (...a: never[]) => unknown> = {
    include: (name: string, dot: unknown) => this.render(name, dot, dot),
    required: (message: string, v: unknown) => {
      if (v === null || v === undefined || v === '') throw new Error(`execution error: ${message}`);
      return v;
    },
    fail: (message: string) => {
      throw new Error(`execution error: ${message}`);
    },
    toYaml: (v: unknown) => stringify(v ?? null, { sortMapEntries: true, lineWidth: 0 }).replace(/\n$/, ''),
    toJson: (v: unknown) => JSON.stringify(v ?? null),
    indent: (n: number, s: string) => s.replace(/^/gm, ' '.repeat(n)),
    nindent: (n: number, s: string) => `\n${s.replace(/^/gm, ' '.repeat(n))}`,
    quote: (...a: unknown[]) => a.filter((x) => x !== null && x !== undefined).map((x) => JSON.stringify(show(x))).join(' '),
    upper: (s: string) => s.toUpperCase(),
    lower: (s: string) => s.toLowerCase(),
    trim: (s: string) => show(s).trim(),
    trunc: (n: number, s: string) => (n >= 0 ? s.slice(0, n) : s.slice(n)),
    trimSuffix: (suffix: string, s: string) => (s.endsWith(suffix) ? s.slice(0, s.length - suffix.length) : s),
    trimPrefix: (prefix: string, s: string) => (s.startsWith(prefix) ? s.slice(prefix.length) : s),
    contains: (sub: string, s: string) => s.includes(sub),
    replace: (from: string, to: string, s: string) => s.split(from).join(to),
    regexReplaceAll: (re: string, s: string, to: string) => s.replace(new RegExp(re, 'g'), to.replace(/\$\{(\w+)\}/g, '$<$1>')),
    print: (...a: unknown[]) => a.map((x, i) => (i > 0 && typeof x !== 'string' && typeof a[i - 1] !== 'string' ? ' ' : '') + show(x)).join(''),
    printf: (format: string, ...a: unknown[]) => {
      let n = 0;
      return format.replace(/%([sdvq%])/g, (_, verb: string) => (verb === '%' ? '%' : verb === 'q' ? JSON.stringify(show(a[n++])) : show(a[n++])));
    },
    sha256sum: (s: string) => createHash('sha256').update(s).digest('hex'),
    b64enc: (s: string) => Buffer.from(show(s)).toString('base64'),
    toString: (v: unknown) => show(v),
    default: (fallback: unknown, ...v: unknown[]) => (v.length > 0 && truth(v[0]) ? v[0] : fallback),
    empty: (v: unknown) => !truth(v),
    not: (v: unknown) => !truth(v),
    eq: (a: unknown, ...b: unknown[]) => b.some((x) => x === a),
    ne: (a: unknown, b: unknown) => a !== b,
    len: (v: unknown) => (Array.isArray(v) || typeof v === 'string' ? v.length : isDict(v) ? Object.keys(v).length : 0),
    dict: (...kv: unknown[]) => Object.fromEntries(Array.from({ length: kv.length / 2 }, (_, i) => [show(kv[2 * i]), kv[2 * i + 1]])),
    list: (...v: unknown[]) => v,
    append: (l: unknown[] | null, v: unknown) => [...(l ?? []), v],
    hasKey: (d: Dict, k: string) => Object.hasOwn(d, k),
    get: (d: Dict, k: string) => d[k] ?? '',
    set: (d: Dict, k: string, v: unknown) => ((d[k] = v), d),
    omit: (d: Dict, ...keys: string[]) => Object.fromEntries(Object.entries(d).filter(([k]) => !keys.includes(k))),
    deepCopy: (v: unknown) => structuredClone(v),
  };
}

/** `a` overlaid with `b` as Helm merges values: maps merged key by key, anything else replaced. */
function mergeValues(a: unknown, b: unknown): unknown {
  if (!isDict(a) || !isDict(b)) return structuredClone(b);
  const out: Dict = structuredClone(a);
  for (const [k, v] of Object.entries(b)) {
    if (v === null) delete out[k];
    else out[k] = mergeValues(out[k], v);
  }
  return out;
}

type Manifest = { kind: string; metadata: { name: string; annotations?: Dict }; [key: string]: unknown };
interface Rendered {
  readonly release: string;
  readonly values: Dict;
  /** Each template's output, by file name. */
  readonly files: Record<string, string>;
  readonly manifests: Manifest[];
  get(kind: string, name?: string): Manifest;
}

/** `helm template <release> helm/pgwarden -f <overrides>`, as far as this chart needs. */
function renderChart(overrides: Dict, release = 'prod'): Rendered {
  const merged = mergeValues(values, overrides) as Dict;
  if (!validate(merged)) throw new Error(`values don't meet the schema: ${JSON.stringify(validate.errors)}`);
  const meta = parse(readFileSync(`${chart}Chart.yaml`, 'utf8')) as { name: string; version: string; appVersion: string };
  const templates = new GoTemplates();
  const names = readdirSync(`${chart}templates`).sort();
  for (const name of names) templates.add(`pgwarden/templates/${name}`, readFileSync(`${chart}templates/${name}`, 'utf8'));
  const root = {
    Values: merged,
    Release: { Name: release, Namespace: 'default', Service: 'Helm' },
    Chart: { Name: meta.name, Version: meta.version, AppVersion: meta.appVersion },
    Template: { BasePath: 'pgwarden/templates' },
    Files: { Get: (path: string) => readFileSync(`${chart}${path}`, 'utf8') },
  };
  const files: Record<string, string> = {};
  for (const name of names.filter((n) => !n.startsWith('_'))) files[name] = templates.render(`pgwarden/templates/${name}`, root);
  const manifests = Object.entries(files)
    .filter(([name]) => name.endsWith('.yaml'))
    .flatMap(([name, text]) =>
      parseAllDocuments(text).map((doc) => {
        if (doc.errors.length > 0) throw new Error(`${name} renders invalid YAML: ${at(doc.errors, 0).message}\n${text}`);
        return doc.toJS() as Manifest | null;
      }),
    )
    .filter((m): m is Manifest => m !== null);
  return {
    release,
    values: merged,
    files,
    manifests,
    get(kind, name) {
      const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
      if (found.length !== 1) throw new Error(`${found.length} ${kind} ${name ?? ''} rendered`);
      return at(found, 0);
    },
  };
}
