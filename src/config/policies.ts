/**
 * Item-by-item validation of `policies` (and `targets`): every error names the key it is about,
 * as `policies[2].maxIdle: "5 minutes" is not a duration`. The result is the compiled policy list:
 * durations in seconds, globs checked, defaults filled.
 */
import cron from 'node-cron';
import { ConfigError } from '../errors.js';
import { parseDuration } from './duration.js';
import { globProblem } from './glob.js';
import { databaseUrlProblem } from './redact.js';

export type Mode = 'dry-run' | 'enforce';

export const POLICY_KINDS = [
  'idle_session',
  'idle_in_transaction',
  'long_query',
  'long_transaction',
  'lock_blocker',
  'password_expiry',
  'disabled_role',
] as const;
export type PolicyKind = (typeof POLICY_KINDS)[number];

/** The session states of pg_stat_activity, for `states` lists and `--state`. */
export const SESSION_STATES = [
  'active',
  'idle',
  'idle in transaction',
  'idle in transaction (aborted)',
  'fastpath function call',
  'disabled',
] as const;

export const DISABLED_ROLE_ACTIONS = ['nologin', 'terminate', 'revoke_connect', 'revoke_privileges'] as const;
export type DisabledRoleAction = (typeof DISABLED_ROLE_ACTIONS)[number];

/** Which sessions or roles a policy looks at. Empty lists mean "no filter". */
export interface Match {
  readonly roles: readonly string[];
  readonly databases: readonly string[];
  readonly applications: readonly string[];
  readonly exclude: {
    readonly roles: readonly string[];
    readonly databases: readonly string[];
    readonly applications: readonly string[];
  };
}

/** Keys every policy kind has. */
export interface PolicyCommon {
  readonly name: string;
  readonly schedule: string;
  /** Overrides the global mode when set. */
  readonly mode: Mode | undefined;
  readonly match: Match;
  readonly maxActionsPerRun: number;
  /** Target names this policy runs on; undefined means every target. */
  readonly targets: readonly string[] | undefined;
}

export interface IdleSessionPolicy extends PolicyCommon {
  readonly kind: 'idle_session';
  readonly maxIdleSeconds: number;
  readonly action: 'terminate';
}
export interface IdleInTransactionPolicy extends PolicyCommon {
  readonly kind: 'idle_in_transaction';
  readonly maxIdleSeconds: number;
  readonly action: 'terminate';
  /** Only sessions that block someone (needs the lock graph). */
  readonly onlyWhenBlocking: boolean;
}
export interface LongQueryPolicy extends PolicyCommon {
  readonly kind: 'long_query';
  readonly maxDurationSeconds: number;
  readonly action: 'cancel' | 'terminate';
  /** A backend cancelled this long ago and still over the limit is terminated. */
  readonly escalateAfterSeconds: number | undefined;
}
export interface LongTransactionPolicy extends PolicyCommon {
  readonly kind: 'long_transaction';
  readonly maxDurationSeconds: number;
  readonly action: 'terminate';
}
export interface LockBlockerPolicy extends PolicyCommon {
  readonly kind: 'lock_blocker';
  readonly maxBlockedSeconds: number;
  readonly action: 'cancel' | 'terminate';
  /** States the root blocker must be in to be acted on (default: the two idle-in-transaction states). */
  readonly states: readonly string[];
}
export interface PasswordExpiryPolicy extends PolicyCommon {
  readonly kind: 'password_expiry';
  readonly warnWithinSeconds: number;
  readonly requireExpiry: boolean;
  readonly action: 'report' | 'nologin';
  /** With action nologin: how long past expiry before the role is disabled. */
  readonly graceSeconds: number;
}
export interface DisabledWhen {
  readonly nologin: boolean;
  readonly expired: boolean;
  readonly memberOf: string | undefined;
  readonly roles: readonly string[];
}
export interface DisabledRolePolicy extends PolicyCommon {
  readonly kind: 'disabled_role';
  readonly disabledWhen: DisabledWhen;
  /** In the fixed order nologin, terminate, revoke_connect, revoke_privileges. */
  readonly actions: readonly DisabledRoleAction[];
}

export type Policy =
  | IdleSessionPolicy
  | IdleInTransactionPolicy
  | LongQueryPolicy
  | LongTransactionPolicy
  | LockBlockerPolicy
  | PasswordExpiryPolicy
  | DisabledRolePolicy;

/** A PostgreSQL server pgwarden watches. */
export interface Target {
  readonly name: string;
  /** Empty: libpq environment or localhost. */
  readonly url: string;
}

const DEFAULT_MAX_ACTIONS_PER_RUN = 50;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

type Doc = Record<string, unknown>;

/** Reads one item's keys, failing with the full path of the key at fault. */
class ItemReader {
  readonly #doc: Doc;
  readonly #path: string;
  readonly #seen = new Set<string>();

  constructor(doc: unknown, path: string) {
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      throw new ConfigError(`${path}: must be a mapping of keys, got ${JSON.stringify(doc)}`);
    }
    this.#doc = doc as Doc;
    this.#path = path;
  }

  key(name: string): string {
    return `${this.#path}.${name}`;
  }

  fail(name: string, problem: string): never {
    throw new ConfigError(`${this.key(name)}: ${problem}`);
  }

  raw(name: string): unknown {
    this.#seen.add(name);
    return this.#doc[name];
  }

  has(name: string): boolean {
    return this.#doc[name] !== undefined && this.#doc[name] !== null;
  }

  string(name: string, fallback?: string): string {
    const value = this.raw(name);
    if (value === undefined || value === null) {
      if (fallback !== undefined) return fallback;
      this.fail(name, 'is required');
    }
    if (typeof value !== 'string' || value.length === 0) this.fail(name, `${JSON.stringify(value)} is not a non-empty string`);
    return value;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback?: T): T {
    const value = this.raw(name);
    if ((value === undefined || value === null) && fallback !== undefined) return fallback;
    if (value === undefined || value === null) this.fail(name, `is required (one of ${allowed.join(', ')})`);
    if (!allowed.includes(value as T)) {
      this.fail(name, `${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
    }
    return value as T;
  }

  seconds(name: string, fallback?: string): number {
    const value = this.raw(name);
    if ((value === undefined || value === null) && fallback !== undefined) return parseDuration(fallback) as number;
    if (value === undefined || value === null) this.fail(name, 'is required (a duration such as 30s, 5m, 1h, 14d)');
    const seconds = parseDuration(value);
    if (seconds === undefined) this.fail(name, `${JSON.stringify(value)} is not a duration (use e.g. 30s, 5m, 1h, 14d)`);
    if (seconds <= 0) this.fail(name, `${JSON.stringify(value)} must be longer than zero`);
    return seconds;
  }

  optionalSeconds(name: string): number | undefined {
    return this.has(name) ? this.seconds(name) : (this.raw(name), undefined);
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.raw(name);
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') this.fail(name, `${JSON.stringify(value)} is not true or false`);
    return value;
  }

  positiveInt(name: string, fallback: number): number {
    const value = this.raw(name);
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      this.fail(name, `${JSON.stringify(value)} is not a whole number of at least 1`);
    }
    return value;
  }

  globs(name: string): string[] {
    const value = this.raw(name);
    if (value === undefined || value === null) return [];
    const list = typeof value === 'string' ? [value] : value;
    if (!Array.isArray(list)) this.fail(name, `${JSON.stringify(value)} is not a list of name patterns`);
    list.forEach((glob, i) => {
      const problem = globProblem(glob);
      if (problem) throw new ConfigError(`${this.key(name)}[${i}]: ${problem}`);
    });
    return list as string[];
  }

  child(name: string): ItemReader | undefined {
    const value = this.raw(name);
    if (value === undefined || value === null) return undefined;
    return new ItemReader(value, this.key(name));
  }

  /** Fails on the first key that was never read: a typo must not silently disable a rule. */
  rejectUnknown(): void {
    for (const name of Object.keys(this.#doc)) {
      if (!this.#seen.has(name)) {
        const allowed = [...this.#seen].sort().join(', ');
        throw new ConfigError(`${this.key(name)}: unknown key (allowed here: ${allowed})`);
      }
    }
  }
}

function readMatch(item: ItemReader): Match {
  const match = item.child('match');
  if (!match) {
    return { roles: [], databases: [], applications: [], exclude: { roles: [], databases: [], applications: [] } };
  }
  const roles = match.globs('roles');
  const databases = match.globs('databases');
  const applications = match.globs('applications');
  const exclude = match.child('exclude');
  const excluded = {
    roles: exclude?.globs('roles') ?? [],
    databases: exclude?.globs('databases') ?? [],
    applications: exclude?.globs('applications') ?? [],
  };
  exclude?.rejectUnknown();
  match.rejectUnknown();
  return { roles, databases, applications, exclude: excluded };
}

function readSchedule(item: ItemReader): string {
  const schedule = item.string('schedule', '* * * * *');
  const validation = cron.validateDetailed(schedule);
  if (!validation.valid) {
    const why = validation.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
    item.fail('schedule', `${JSON.stringify(schedule)} is not a cron expression (5 fields, or 6 with seconds first${why ? `; ${why}` : ''})`);
  }
  return schedule;
}

function readCommon(item: ItemReader, targetNames: ReadonlySet<string>): PolicyCommon {
  const name = item.string('name');
  if (!NAME.test(name)) {
    item.fail('name', `${JSON.stringify(name)} must start with a letter or digit and hold only letters, digits, '_', '.', '-' (at most 63)`);
  }
  let targets: string[] | undefined;
  if (item.has('targets')) {
    const list = item.raw('targets');
    if (!Array.isArray(list) || list.length === 0) item.fail('targets', 'must be a non-empty list of target names');
    list.forEach((t, i) => {
      if (typeof t !== 'string' || !targetNames.has(t)) {
        throw new ConfigError(`${item.key('targets')}[${i}]: ${JSON.stringify(t)} is not a configured target (${[...targetNames].join(', ')})`);
      }
    });
    targets = list as string[];
  } else {
    item.raw('targets');
  }
  return {
    name,
    schedule: readSchedule(item),
    mode: item.has('mode') ? item.oneOf<Mode>('mode', ['dry-run', 'enforce']) : (item.raw('mode'), undefined),
    match: readMatch(item),
    maxActionsPerRun: item.positiveInt('maxActionsPerRun', DEFAULT_MAX_ACTIONS_PER_RUN),
    targets,
  };
}

function readDisabledWhen(item: ItemReader): DisabledWhen {
  const when = item.child('disabledWhen');
  if (!when) item.fail('disabledWhen', 'is required: at least one of nologin, expired, memberOf, roles');
  const memberOf = when.has('memberOf') ? when.string('memberOf') : (when.raw('memberOf'), undefined);
  const result: DisabledWhen = {
    nologin: when.boolean('nologin', false),
    expired: when.boolean('expired', false),
    memberOf,
    roles: when.globs('roles'),
  };
  when.rejectUnknown();
  if (!result.nologin && !result.expired && !result.memberOf && result.roles.length === 0) {
    item.fail('disabledWhen', 'sets no condition: give at least one of nologin, expired, memberOf, roles');
  }
  if (result.memberOf?.startsWith('pg_')) {
    throw new ConfigError(`${item.key('disabledWhen')}.memberOf: ${JSON.stringify(result.memberOf)} is a reserved pg_* role`);
  }
  return result;
}

function readDisabledActions(item: ItemReader): DisabledRoleAction[] {
  const value = item.raw('actions');
  if (value === undefined || value === null) return ['nologin', 'terminate', 'revoke_connect'];
  if (!Array.isArray(value) || value.length === 0) item.fail('actions', `must be a non-empty list of ${DISABLED_ROLE_ACTIONS.join(', ')}`);
  value.forEach((a, i) => {
    if (!DISABLED_ROLE_ACTIONS.includes(a as DisabledRoleAction)) {
      throw new ConfigError(`${item.key('actions')}[${i}]: ${JSON.stringify(a)} is not one of ${DISABLED_ROLE_ACTIONS.join(', ')}`);
    }
  });
  // The order is fixed whatever the list says: NOLOGIN first, so nobody reconnects in between.
  return DISABLED_ROLE_ACTIONS.filter((a) => value.includes(a));
}

function readPolicy(doc: unknown, path: string, targetNames: ReadonlySet<string>): Policy {
  const item: ItemReader = new ItemReader(doc, path);
  const kind = item.oneOf<PolicyKind>('kind', POLICY_KINDS);
  const common = readCommon(item, targetNames);
  let policy: Policy;
  switch (kind) {
    case 'idle_session':
      policy = { ...common, kind, maxIdleSeconds: item.seconds('maxIdle'), action: item.oneOf('action', ['terminate'], 'terminate') };
      break;
    case 'idle_in_transaction':
      policy = {
        ...common,
        kind,
        maxIdleSeconds: item.seconds('maxIdle'),
        action: item.oneOf('action', ['terminate'], 'terminate'),
        onlyWhenBlocking: item.boolean('onlyWhenBlocking', false),
      };
      break;
    case 'long_query':
      policy = {
        ...common,
        kind,
        maxDurationSeconds: item.seconds('maxDuration'),
        action: item.oneOf('action', ['cancel', 'terminate'], 'cancel'),
        escalateAfterSeconds: item.optionalSeconds('escalateAfter'),
      };
      if (policy.escalateAfterSeconds !== undefined && policy.action !== 'cancel') {
        item.fail('escalateAfter', 'only makes sense with action: cancel');
      }
      break;
    case 'long_transaction':
      policy = { ...common, kind, maxDurationSeconds: item.seconds('maxDuration'), action: item.oneOf('action', ['terminate'], 'terminate') };
      break;
    case 'lock_blocker': {
      // By default only idle transactions are ended: an active root is working, not forgotten.
      const states: unknown = item.raw('states') ?? ['idle in transaction', 'idle in transaction (aborted)'];
      if (!Array.isArray(states)) item.fail('states', `must be a list of session states (${SESSION_STATES.join(', ')})`);
      states.forEach((s, i) => {
        if (!SESSION_STATES.includes(s as (typeof SESSION_STATES)[number])) {
          throw new ConfigError(`${item.key('states')}[${i}]: ${JSON.stringify(s)} is not a session state (${SESSION_STATES.join(', ')})`);
        }
      });
      policy = {
        ...common,
        kind,
        maxBlockedSeconds: item.seconds('maxBlocked'),
        action: item.oneOf('action', ['cancel', 'terminate'], 'terminate'),
        states: states as string[],
      };
      break;
    }
    case 'password_expiry': {
      const action = item.oneOf('action', ['report', 'nologin'], 'report');
      const grace = item.optionalSeconds('grace');
      if (grace !== undefined && action !== 'nologin') item.fail('grace', 'only makes sense with action: nologin');
      policy = {
        ...common,
        kind,
        warnWithinSeconds: item.seconds('warnWithin', '14d'),
        requireExpiry: item.boolean('requireExpiry', false),
        action,
        graceSeconds: grace ?? 0,
      };
      break;
    }
    case 'disabled_role':
      policy = { ...common, kind, disabledWhen: readDisabledWhen(item), actions: readDisabledActions(item) };
      break;
  }
  item.rejectUnknown();
  return policy;
}

/** Validates and compiles the `policies` list; names must be unique. */
export function compilePolicies(docs: readonly unknown[], targetNames: ReadonlySet<string>): Policy[] {
  const seen = new Map<string, number>();
  return docs.map((doc, i) => {
    const policy = readPolicy(doc, `policies[${i}]`, targetNames);
    const earlier = seen.get(policy.name);
    if (earlier !== undefined) {
      throw new ConfigError(`policies[${i}].name: ${JSON.stringify(policy.name)} is already the name of policies[${earlier}]`);
    }
    seen.set(policy.name, i);
    return Object.freeze(policy);
  });
}

/**
 * Validates `targets` (or builds the single "default" target from database.url, checked by the
 * caller). `source` names where the list came from when that is not the file (an env var).
 */
export function compileTargets(docs: readonly unknown[], databaseUrl: string, source?: string): Target[] {
  if (docs.length === 0) return [{ name: 'default', url: databaseUrl }];
  if (databaseUrl !== '') {
    throw new ConfigError('targets: set either database.url (one target) or targets (several), not both');
  }
  const seen = new Set<string>();
  return docs.map((doc, i) => {
    const item: ItemReader = new ItemReader(doc, `targets[${i}]`);
    const name = item.string('name');
    if (!NAME.test(name)) item.fail('name', `${JSON.stringify(name)} must hold only letters, digits, '_', '.', '-'`);
    if (seen.has(name)) item.fail('name', `${JSON.stringify(name)} is used twice`);
    seen.add(name);
    const url = item.string('url');
    // Never echo the value: it may hold a password.
    const problem = databaseUrlProblem(url);
    if (problem !== undefined) {
      throw new ConfigError(`${item.key('url')}${source !== undefined ? ` (${source})` : ''}: ${problem}`);
    }
    item.rejectUnknown();
    return Object.freeze({ name, url });
  });
}
