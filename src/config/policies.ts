/**
 * Item-by-item validation of `policies` (and `targets`): every error names the key it is about,
 * as `policies[2].maxIdle: "5 minutes" is not a duration`. The common keys are read here, each
 * kind's own by its module (src/policies/registry.ts). The result is the compiled policy list:
 * durations in seconds, globs checked, defaults filled.
 */
import { ConfigError } from '../errors.js';
import { nodeCron } from '../lazy.js';
import { databaseUrlProblem } from './redact.js';
import { ItemReader, readMatch, type Mode, type PolicyCommon } from './reader.js';
import type { ConfigKnown } from '../policies/kind.js';
import { POLICY_KINDS, readPolicyKind, type Policy, type PolicyKind } from '../policies/registry.js';

export { SESSION_STATES, type Match, type Mode, type PolicyCommon } from './reader.js';
export type { Policy, PolicyKind } from '../policies/registry.js';


/** A PostgreSQL server pgwarden watches. */
export interface Target {
  readonly name: string;
  /** Empty: libpq environment or localhost. */
  readonly url: string;
}

const DEFAULT_MAX_ACTIONS_PER_RUN = 50;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

function readSchedule(item: ItemReader): string {
  const schedule = item.string('schedule', '* * * * *');
  const validation = nodeCron().validateDetailed(schedule);
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

function readPolicy(doc: unknown, path: string, targetNames: ReadonlySet<string>, known: ConfigKnown): Policy {
  const item: ItemReader = new ItemReader(doc, path);
  const kind = item.oneOf<PolicyKind>('kind', POLICY_KINDS);
  const policy = readPolicyKind(kind, item, readCommon(item, targetNames), known);
  item.rejectUnknown();
  return policy;
}

/** Validates and compiles the `policies` list; names must be unique; `known` holds the directories they may name. */
export function compilePolicies(docs: readonly unknown[], targetNames: ReadonlySet<string>, known: ConfigKnown = { directories: new Map() }): Policy[] {
  const seen = new Map<string, number>();
  return docs.map((doc, i) => {
    const policy = readPolicy(doc, `policies[${i}]`, targetNames, known);
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
