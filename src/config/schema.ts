/**
 * The convict schema of DESIGN.md: every top-level key with its doc, default and env var.
 * Items of `policies` and `targets` are free-form here and checked one by one in policies.ts,
 * which can name the offending key (`policies[2].maxIdle`) — convict only sees the array.
 */
import convict from 'convict';
import { isDuration } from './duration.js';

/** Parses a JSON array from an env var (PGWARDEN_POLICIES, PGWARDEN_TARGETS). */
function coerceJsonArray(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value; // left as a string: the format check then names the key
  }
}

convict.addFormat({
  name: 'duration',
  validate(value: unknown) {
    if (!isDuration(value)) throw new Error(`${JSON.stringify(value)} is not a duration (use e.g. 30s, 5m, 1h, 14d)`);
  },
});

convict.addFormat({
  name: 'json-array',
  coerce: coerceJsonArray,
  validate(value: unknown) {
    if (!Array.isArray(value)) throw new Error('must be a list');
  },
});

convict.addFormat({
  name: 'string-list',
  coerce: (value: unknown) => (typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value),
  validate(value: unknown) {
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) {
      throw new Error('must be a list of non-empty strings');
    }
  },
});

convict.addFormat({
  name: 'session-labels',
  coerce: (value: unknown) => (typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value),
  validate(value: unknown) {
    if (!Array.isArray(value) || !value.every((v) => v === 'application')) {
      throw new Error('must be a list of extra labels: [] or [application]');
    }
  },
});

convict.addFormat({
  name: 'strict-boolean',
  coerce: (value: unknown) => (value === 'true' ? true : value === 'false' ? false : value),
  validate(value: unknown) {
    if (typeof value !== 'boolean') throw new Error(`${JSON.stringify(value)} is not true or false`);
  },
});

convict.addFormat({
  name: 'fraction',
  coerce: Number,
  validate(value: unknown) {
    if (typeof value !== 'number' || !(value > 0 && value <= 1)) throw new Error('must be a number in (0, 1]');
  },
});

/** The schema object; exported so the README's key table can be checked against it. */
export const schema = {
  mode: {
    doc: 'dry-run plans and reports only; enforce acts. Each policy may override it with its own mode.',
    format: ['dry-run', 'enforce'],
    default: 'dry-run',
    env: 'PGWARDEN_MODE',
  },
  database: {
    url: {
      doc: 'Connection URL of the single target "default". Empty: libpq environment (PGHOST, PGUSER, ...) or localhost.',
      format: String,
      default: '',
      env: 'PGWARDEN_DATABASE_URL',
      sensitive: true,
    },
    connectTimeout: {
      doc: 'How long to wait for a connection to open.',
      format: 'duration',
      default: '5s',
      env: 'PGWARDEN_DATABASE_CONNECT_TIMEOUT',
    },
    statementTimeout: {
      doc: "statement_timeout of pgwarden's own sessions.",
      format: 'duration',
      default: '30s',
      env: 'PGWARDEN_DATABASE_STATEMENT_TIMEOUT',
    },
    lockTimeout: {
      doc: 'lock_timeout for DDL such as ALTER ROLE, REVOKE, REASSIGN OWNED: a blocked DDL gives up instead of queueing others behind it.',
      format: 'duration',
      default: '5s',
      env: 'PGWARDEN_DATABASE_LOCK_TIMEOUT',
    },
    poolSize: {
      doc: 'Most connections pgwarden opens to one target at once.',
      format: 'nat',
      default: 3,
      env: 'PGWARDEN_DATABASE_POOL_SIZE',
    },
  },
  targets: {
    doc: 'Several servers: a list of { name, url }. Use either this or database.url, not both.',
    format: 'json-array',
    default: [] as unknown[],
    env: 'PGWARDEN_TARGETS',
  },
  server: {
    host: {
      doc: 'Address of the HTTP server (/metrics, /healthz, /readyz).',
      format: String,
      default: '0.0.0.0',
      env: 'PGWARDEN_SERVER_HOST',
    },
    port: {
      doc: 'Port of the HTTP server.',
      format: 'port',
      default: 9816,
      env: 'PGWARDEN_SERVER_PORT',
    },
  },
  safety: {
    maxFraction: {
      doc: "Circuit breaker: a policy run that would act on more than this fraction of a target's client sessions (and more than minActions) acts on none.",
      format: 'fraction',
      default: 0.5,
      env: 'PGWARDEN_SAFETY_MAX_FRACTION',
    },
    minActions: {
      doc: 'Circuit breaker: runs acting on at most this many sessions never trip it.',
      format: 'nat',
      default: 5,
      env: 'PGWARDEN_SAFETY_MIN_ACTIONS',
    },
  },
  exempt: {
    superusers: {
      doc: 'Never touch sessions of superusers.',
      format: 'strict-boolean',
      default: true,
      env: 'PGWARDEN_EXEMPT_SUPERUSERS',
    },
    roles: {
      doc: 'Roles (globs) no policy ever touches.',
      format: 'string-list',
      default: [] as string[],
      env: 'PGWARDEN_EXEMPT_ROLES',
    },
    applications: {
      doc: 'application_name values (globs) no policy touches. A convenience, not a security boundary: any client can set its application_name.',
      format: 'string-list',
      default: [] as string[],
      env: 'PGWARDEN_EXEMPT_APPLICATIONS',
    },
  },
  audit: {
    includeQuery: {
      doc: 'Put the (truncated) query text of a session in its audit line.',
      format: 'strict-boolean',
      default: false,
      env: 'PGWARDEN_AUDIT_INCLUDE_QUERY',
    },
    queryMaxLength: {
      doc: 'Characters of query text kept in audit lines.',
      format: 'nat',
      default: 200,
      env: 'PGWARDEN_AUDIT_QUERY_MAX_LENGTH',
    },
    repeatAfter: {
      doc: 'A violation that persists in dry-run (or on a replica that does not lead) is logged when it first appears, when what would be done changes, and then at most once per this duration. Enforce-mode action lines are never held back.',
      format: 'duration',
      default: '1h',
      env: 'PGWARDEN_AUDIT_REPEAT_AFTER',
    },
  },
  leader: {
    lockKey: {
      doc: 'Advisory lock key of leader election (text, hashed to a bigint; or a number). Two deployments against one server with different keys both enforce.',
      format: String,
      default: 'pgwarden',
      env: 'PGWARDEN_LEADER_LOCK_KEY',
    },
    pollInterval: {
      doc: 'How often a follower tries to take the lead, and the leader checks it still holds it.',
      format: 'duration',
      default: '5s',
      env: 'PGWARDEN_LEADER_POLL_INTERVAL',
    },
  },
  metrics: {
    sessionLabels: {
      doc: 'Labels pgwarden_sessions carries beyond target, database, role and state: [] or [application]. Each adds series.',
      format: 'session-labels',
      default: [] as string[],
      env: 'PGWARDEN_METRICS_SESSION_LABELS',
    },
    maxRoleSeries: {
      doc: 'Most roles with series of their own per metric and target; the rest are folded into role="_other" and counted in pgwarden_role_series_folded.',
      format: 'nat',
      default: 1000,
      env: 'PGWARDEN_METRICS_MAX_ROLE_SERIES',
    },
  },
  log: {
    level: {
      doc: 'Log level of the JSON log on stderr.',
      format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
      env: 'PGWARDEN_LOG_LEVEL',
    },
  },
  shutdownTimeout: {
    doc: 'On SIGTERM, how long running actions may take to finish before pgwarden exits anyway.',
    format: 'duration',
    default: '10s',
    env: 'PGWARDEN_SHUTDOWN_TIMEOUT',
  },
  policies: {
    doc: 'The rules: a list of policies, each with name, kind, schedule and the keys of its kind.',
    format: 'json-array',
    default: [] as unknown[],
    env: 'PGWARDEN_POLICIES',
  },
  directories: {
    doc: 'LDAP directories (OpenLDAP, Active Directory) that role policies may ask who is disabled, gone or out of a group: a list of { name, url, bindDN, baseDN, userFilter, disabledFilter, roleAttribute, roles, refresh, minEntries, tls, timeout }. The bind password from env PGWARDEN_DIRECTORY_<NAME>_BIND_PASSWORD or bindPasswordFile.',
    format: 'json-array',
    default: [] as unknown[],
    env: 'PGWARDEN_DIRECTORIES',
  },
};

/** The document convict validates: the shape of the configuration file. */
export interface Settings {
  mode: 'dry-run' | 'enforce';
  database: {
    url: string;
    connectTimeout: string;
    statementTimeout: string;
    lockTimeout: string;
    poolSize: number;
  };
  targets: unknown[];
  server: { host: string; port: number };
  safety: { maxFraction: number; minActions: number };
  exempt: { superusers: boolean; roles: string[]; applications: string[] };
  audit: { includeQuery: boolean; queryMaxLength: number; repeatAfter: string };
  metrics: { sessionLabels: string[]; maxRoleSeries: number };
  leader: { lockKey: string; pollInterval: string };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  shutdownTimeout: string;
  policies: unknown[];
  directories: unknown[];
}

/** A fresh convict instance reading the given environment and no argv (flags are applied by the CLI). */
export function createSettings(env: NodeJS.ProcessEnv): convict.Config<Settings> {
  return convict<Settings>(schema as unknown as convict.Schema<Settings>, { env, args: [] });
}
