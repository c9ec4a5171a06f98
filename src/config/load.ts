/**
 * Configuration: file (YAML or JSON) < environment (PGWARDEN_*) < command-line flags, validated
 * in full before anything connects, then frozen and passed in explicitly.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { yaml } from '../lazy.js';
import { parseDuration } from './duration.js';
import { compileDirectories, type DirectoryConfig } from './directories.js';
import { compilePolicies, compileTargets, type Mode, type Policy, type Target } from './policies.js';
import { databaseUrlProblem, redactText, redactUrl, REDACTED } from './redact.js';
import { createSettings, type Settings } from './schema.js';

/** What the command line says; each set field overrides env and file. */
export interface ConfigOverrides {
  readonly configFile?: string | undefined;
  readonly databaseUrl?: string | undefined;
  readonly mode?: string | undefined;
  readonly logLevel?: string | undefined;
}

/** The validated configuration every component receives. */
export interface Config {
  /** The effective document (what `config check` prints, redacted). */
  readonly settings: Readonly<Settings>;
  readonly mode: Mode;
  readonly targets: readonly Target[];
  readonly policies: readonly Policy[];
  /** The LDAP directories role policies may ask (passwords resolved, never printed). */
  readonly directories: readonly DirectoryConfig[];
  readonly connectTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly lockTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  readonly leaderPollMs: number;
  /** audit.repeatAfter: how long a persisting dry-run violation's line is held back, ms. */
  readonly auditRepeatAfterMs: number;
  /** Where the file came from, if any (for messages). */
  readonly source: string | undefined;
}

function readDocument(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`--config ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const { parse: parseYaml, YAMLParseError } = yaml();
  let doc: unknown;
  try {
    // YAML is a superset of JSON: one parser reads both.
    doc = parseYaml(text, { prettyErrors: false, uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const line = err.linePos?.[0]?.line;
      throw new ConfigError(`${path}${line ? `:${line}` : ''}: not valid YAML or JSON: ${err.message.split('\n')[0]}`);
    }
    throw err;
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`${path}: the configuration must be a mapping of keys at the top level`);
  }
  return doc as Record<string, unknown>;
}

/** convict reports every problem on its own line; we show the first, named, and count the rest. */
function firstConvictError(message: string): string {
  const lines = message.split('\n').filter(Boolean);
  const first = (lines[0] ?? message)
    // Never echo a value: it may be (or hold) a secret that no redactor recognises, such as a
    // URL whose password has a space in it inside a broken JSON list.
    .replace(/: value was .*$/, '')
    .replace(/^configuration param '([^']+)' not declared in the schema$/, '$1: unknown key')
    .replace(/^configuration param '([^']+)' missing from config, did you override its parent\?$/, '$1: must be a mapping of keys');
  const more = lines.length > 1 ? ` (and ${lines.length - 1} more problem${lines.length > 2 ? 's' : ''})` : '';
  return redactText(first) + more;
}

/** Loads, validates and freezes the configuration; throws ConfigError naming the bad key. */
export function loadConfig(overrides: ConfigOverrides, env: NodeJS.ProcessEnv = process.env): Config {
  const settings = createSettings(env);
  const file = overrides.configFile ?? (env.PGWARDEN_CONFIG || undefined);
  if (file) {
    const doc = readDocument(file);
    // convict would merge a mapping into the default list: catch that before it can.
    for (const key of ['policies', 'targets', 'directories']) {
      if (doc[key] !== undefined && doc[key] !== null && !Array.isArray(doc[key])) {
        throw new ConfigError(`${key}: must be a list`);
      }
    }
    settings.load(doc);
  }
  // A JSON list in the environment that does not parse: say so, naming the variable (never its value).
  for (const [key, variable] of [['policies', 'PGWARDEN_POLICIES'], ['targets', 'PGWARDEN_TARGETS'], ['directories', 'PGWARDEN_DIRECTORIES']] as const) {
    const text = env[variable];
    if (text === undefined) continue;
    try {
      JSON.parse(text);
    } catch {
      // Node's parse error quotes the text, which may hold a password: only where it went wrong.
      throw new ConfigError(`${key} (env ${variable}): not valid JSON (a list of mappings, e.g. [{"name": "x", ...}])`);
    }
  }
  // Flags win over env and file; convict re-applies env on every load, so set them last.
  if (overrides.databaseUrl !== undefined) settings.set('database.url', overrides.databaseUrl);
  if (overrides.mode !== undefined) settings.set('mode', overrides.mode as Mode);
  if (overrides.logLevel !== undefined) settings.set('log.level', overrides.logLevel as Settings['log']['level']);
  try {
    settings.validate({ allowed: 'strict' });
  } catch (err) {
    throw new ConfigError(firstConvictError((err as Error).message));
  }
  const doc = settings.getProperties();
  if (doc.database.url !== '') {
    // Never echo the value: it may hold a password.
    const problem = databaseUrlProblem(doc.database.url);
    if (problem !== undefined) {
      const key =
        overrides.databaseUrl !== undefined
          ? '--database-url'
          : env.PGWARDEN_DATABASE_URL !== undefined
            ? 'database.url (env PGWARDEN_DATABASE_URL)'
            : 'database.url';
      const orEmpty = problem.startsWith('must be') ? ' (or empty for the libpq environment)' : '';
      throw new ConfigError(`${key}: ${problem}${orEmpty}`);
    }
  }
  const targets = compileTargets(doc.targets, doc.database.url, env.PGWARDEN_TARGETS !== undefined ? 'env PGWARDEN_TARGETS' : undefined);
  const directories = compileDirectories(doc.directories, env);
  const policies = compilePolicies(doc.policies, new Set(targets.map((t) => t.name)), { directories: new Map(directories.map((d) => [d.name, d])) });
  const seconds = (text: string) => Math.round((parseDuration(text) as number) * 1000);
  return deepFreeze({
    settings: doc,
    mode: doc.mode,
    targets,
    policies,
    directories,
    connectTimeoutMs: seconds(doc.database.connectTimeout),
    statementTimeoutMs: seconds(doc.database.statementTimeout),
    lockTimeoutMs: seconds(doc.database.lockTimeout),
    shutdownTimeoutMs: seconds(doc.shutdownTimeout),
    leaderPollMs: seconds(doc.leader.pollInterval),
    auditRepeatAfterMs: seconds(doc.audit.repeatAfter),
    source: file,
  });
}

/** The effective configuration with every secret replaced by `***`. */
export function redactSettings(settings: Readonly<Settings>): Settings {
  const copy = structuredClone(settings) as Settings;
  copy.database.url = copy.database.url ? redactUrl(copy.database.url) : '';
  copy.targets = copy.targets.map((t) =>
    t && typeof t === 'object' && 'url' in t && typeof t.url === 'string' ? { ...t, url: redactUrl(t.url) } : t,
  );
  copy.directories = copy.directories.map((d) =>
    d && typeof d === 'object' && 'bindPassword' in d && d.bindPassword !== '' && d.bindPassword !== null && d.bindPassword !== undefined
      ? { ...d, bindPassword: REDACTED }
      : d,
  );
  return copy;
}

export { REDACTED };

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
