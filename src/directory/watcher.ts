/**
 * Keeping each directory's answer, off the policy ticks (DESIGN.md `disabledWhen.directory`):
 * searched at start and then every `refresh`, a policy run reads the last answer and never waits
 * on the directory. Safety first: the answer may be acted on only when the last search
 * succeeded, is younger than three refresh periods, and no policy found it would disable too
 * many roles at once; otherwise the directory decides nothing, `pgwarden_directory_up` is 0 and
 * an error is logged.
 */
import type { Logger } from 'pino';
import type { DirectoryConfig } from '../config/directories.js';
import type { Metrics } from '../metrics/registry.js';
import { indexAnswer, type DirectoryAnswer } from './answer.js';
import { searchDirectory } from './search.js';

/** What a policy run may use of one directory now. */
export interface DirectoryView {
  readonly name: string;
  /** Globs of the role names it judges (`roles`). */
  readonly roles: readonly string[];
  /** The attribute holding role names (for messages). */
  readonly roleAttribute: string;
  /** The answer directory conditions act on; undefined when the directory decides nothing now. */
  readonly answer: DirectoryAnswer | undefined;
  /** Why it decides nothing (set exactly when `answer` is not). */
  readonly problem: string | undefined;
}

/** A search of `config`: the raw result (search.ts), replaceable in tests of the schedule only. */
export type Searcher = (config: DirectoryConfig, groups: readonly string[]) => ReturnType<typeof searchDirectory>;

interface Deps {
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Milliseconds since epoch. */
  readonly clock: () => number;
}

/** Successive failed searches back off up to this (or the refresh period, if longer), ms. */
const MAX_BACKOFF_MS = 30_000;
/** The same error is logged again at most this often, ms. */
const REPEAT_LOG_MS = 60_000;

/** One directory's state: its last answer, its last error, and refusals of that answer by policies. */
export class DirectoryWatcher {
  readonly config: DirectoryConfig;
  /** The `notInGroup` values the policies ask about. */
  readonly groups: readonly string[];
  readonly #deps: Deps;
  #answer: DirectoryAnswer | undefined;
  #error: string | undefined = 'not searched yet';
  #searching: Promise<boolean> | undefined;
  /** Policy runs (`target/policy`) that refused an answer: key → the refused answer's time and why. */
  readonly #refusals = new Map<string, { searchedAt: number; message: string }>();
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #logged: { message: string; at: number } | undefined;

  constructor(config: DirectoryConfig, groups: readonly string[], deps: Deps) {
    this.config = config;
    this.groups = groups;
    this.#deps = deps;
    deps.metrics.directoryUp.set({ directory: config.name }, 0);
    deps.metrics.directoryEntries.set({ directory: config.name }, 0);
  }

  /** Searches now (one search at a time: a second caller shares the first's). Resolves true when it succeeded. */
  refresh(): Promise<boolean> {
    this.#searching ??= this.#search().finally(() => {
      this.#searching = undefined;
    });
    return this.#searching;
  }

  async #search(): Promise<boolean> {
    const { clock, metrics, log } = this.#deps;
    const started = clock();
    try {
      const result = await searchDirectory(this.config, this.groups);
      const now = clock();
      if (result.people.length < this.config.minEntries) {
        this.#fail(`found ${result.people.length} entr${result.people.length === 1 ? 'y' : 'ies'} under userFilter, fewer than minEntries (${this.config.minEntries}): taken for an outage, not a mass departure`);
        return false;
      }
      const recovered = this.#error !== undefined && this.#answer !== undefined;
      this.#answer = indexAnswer(this.config.name, result, now, now - started);
      this.#error = undefined;
      this.#failures = 0;
      metrics.directoryEntries.set({ directory: this.config.name }, this.#answer.entries);
      metrics.directoryLastSuccess.set({ directory: this.config.name }, now / 1000);
      if (recovered || this.#logged) log.info({ directory: this.config.name, entries: this.#answer.entries }, 'directory search succeeded again');
      this.#logged = undefined;
      this.#publish();
      return true;
    } catch (err) {
      this.#fail(err instanceof Error ? err.message : String(err));
      return false;
    }
  }

  #fail(message: string): void {
    const now = this.#deps.clock();
    this.#error = message;
    this.#failures += 1;
    this.#publish();
    if (!this.#logged || this.#logged.message !== message || now - this.#logged.at >= REPEAT_LOG_MS) {
      this.#deps.log.error({ directory: this.config.name }, `directory search failed: ${message}; the directory decides nothing until a search succeeds`);
      this.#logged = { message, at: now };
    }
  }

  /** Why the current answer may not be acted on, or undefined when it may. */
  #problem(now: number): string | undefined {
    if (this.#error !== undefined) return `the last search failed (${this.#error})`;
    const answer = this.#answer;
    if (!answer) return 'not searched yet';
    const age = now - answer.searchedAt;
    if (age >= 3 * this.config.refreshMs) return `its last answer is ${Math.round(age / 1000)}s old, older than three refresh periods`;
    for (const refusal of this.#refusals.values()) {
      if (refusal.searchedAt === answer.searchedAt) return refusal.message;
    }
    return undefined;
  }

  #publish(): void {
    const now = this.#deps.clock();
    // Up only when usable and no policy run still refuses an answer (kept until its next run
    // accepts one, so the gauge does not flap between a search and the next policy tick).
    const up = this.#problem(now) === undefined && this.#refusals.size === 0;
    this.#deps.metrics.directoryUp.set({ directory: this.config.name }, up ? 1 : 0);
  }

  /** What a policy run may use now. */
  view(): DirectoryView {
    const problem = this.#problem(this.#deps.clock());
    this.#publish();
    const { name, roles, roleAttribute } = this.config;
    return { name, roles, roleAttribute, answer: problem === undefined ? this.#answer : undefined, problem };
  }

  /** The last answer, usable or not (for `doctor` and the tests). */
  get lastAnswer(): DirectoryAnswer | undefined {
    return this.#answer;
  }

  /** The last search's error, if it failed. */
  get lastError(): string | undefined {
    return this.#error;
  }

  /**
   * A policy run (`key`) found that `answer` would disable too many roles at once: the directory
   * decides nothing until a later search gives an answer that no run refuses.
   */
  refuse(key: string, answer: DirectoryAnswer, message: string): void {
    const earlier = this.#refusals.get(key);
    this.#refusals.set(key, { searchedAt: answer.searchedAt, message });
    if (earlier?.searchedAt !== answer.searchedAt) {
      this.#deps.log.error({ directory: this.config.name, run: key }, `directory answer refused: ${message}; the directory decides nothing until a search succeeds with an answer that does not`);
    }
    this.#publish();
  }

  /** A policy run (`key`) used an answer without refusing it. */
  accept(key: string): void {
    if (this.#refusals.delete(key)) this.#publish();
  }

  /** Searches now and then every `refresh` (backing off while it fails), off the policy ticks. */
  start(): void {
    this.#stopped = false;
    const loop = () => {
      void this.refresh().then(() => {
        if (this.#stopped) return;
        const backoff = this.#failures > 0 ? Math.min(this.config.refreshMs * 2 ** (this.#failures - 1), Math.max(this.config.refreshMs, MAX_BACKOFF_MS)) : this.config.refreshMs;
        this.#timer = setTimeout(loop, backoff);
      });
    };
    loop();
  }

  /** Stops the schedule and waits for a search under way (it is bounded by `timeout`). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#searching?.catch(() => undefined);
  }
}

/** Every configured directory, by name. */
export class Directories {
  readonly #watchers = new Map<string, DirectoryWatcher>();

  /** `groupsOf(name)`: the `notInGroup` values the policies ask of directory `name`. */
  constructor(configs: readonly DirectoryConfig[], groupsOf: (name: string) => readonly string[], deps: Deps) {
    for (const config of configs) this.#watchers.set(config.name, new DirectoryWatcher(config, groupsOf(config.name), deps));
  }

  get(name: string): DirectoryWatcher | undefined {
    return this.#watchers.get(name);
  }

  get all(): DirectoryWatcher[] {
    return [...this.#watchers.values()];
  }

  /** The view of directory `name` (a name the configuration checked). */
  view(name: string): DirectoryView {
    return this.#watchers.get(name)?.view() ?? { name, roles: [], roleAttribute: '', answer: undefined, problem: 'not configured' };
  }

  /** Searches every directory in `names` now, in parallel; returns the errors, one line each. */
  async refresh(names: readonly string[] = [...this.#watchers.keys()]): Promise<string[]> {
    const watchers = names.flatMap((n) => this.#watchers.get(n) ?? []);
    const results = await Promise.all(watchers.map(async (w) => ((await w.refresh()) ? undefined : `directory ${w.config.name}: ${w.lastError ?? 'failed'}`)));
    return results.filter((r): r is string => r !== undefined);
  }

  start(): void {
    for (const w of this.#watchers.values()) w.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#watchers.values()].map((w) => w.stop()));
  }
}
