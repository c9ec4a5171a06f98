/**
 * Reading one item of a list in the configuration (a policy, a target) key by key: every error
 * names the key it is about (`policies[2].maxIdle: "5 minutes" is not a duration`), and a key
 * nobody read is an error too. Shared by the common policy keys and each kind's own.
 */
import { ConfigError } from '../errors.js';
import { parseDuration } from './duration.js';
import { globProblem } from './glob.js';

export type Mode = 'dry-run' | 'enforce';

/** The session states of pg_stat_activity, for `states` lists and `--state`. */
export const SESSION_STATES = [
  'active',
  'idle',
  'idle in transaction',
  'idle in transaction (aborted)',
  'fastpath function call',
  'disabled',
] as const;

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

type Doc = Record<string, unknown>;

/** Reads one item's keys, failing with the full path of the key at fault. */
export class ItemReader {
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

export function readMatch(item: ItemReader): Match {
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

