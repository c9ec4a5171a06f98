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
import { indexAnswer, namedEntries, type DirectoryAnswer } from './answer.js';
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

/** What a watcher records to and reads the time from. */
export interface DirectoryDeps {
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Milliseconds since epoch. */
  readonly clock: () => number;
}

/** A failed search is tried again after this, doubling while it fails, up to the refresh period, ms. */
const FIRST_RETRY_MS = 5_000;
/** The same error is logged again at most this often, ms. */
const REPEAT_LOG_MS = 60_000;

/** One directory's state: its last answer, its last error, and refusals of that answer by policies. */
export class DirectoryWatcher {
  readonly config: DirectoryConfig;
  /** The `notInGroup` values the policies ask about. */
  readonly groups: readonly string[];
  readonly #deps: DirectoryDeps;
  #answer: DirectoryAnswer | undefined;
  #error: string | undefined = 'not searched yet';
  #searching: Promise<boolean> | undefined;
  /** Policy runs (`target/policy`) that refused an answer: key → the refused answer's time and why. */
  readonly #refusals = new Map<string, { searchedAt: number; message: string }>();
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #logged: { message: string; at: number } | undefined;
  #referencesLogged = false;
  /** The failover last logged (the URLs that did not answer), so it is said once per change. */
  #failedOverLogged = '';
  readonly #abort = new AbortController();

  constructor(config: DirectoryConfig, groups: readonly string[], deps: DirectoryDeps) {
    this.config = config;
    this.groups = groups;
    this.#deps = deps;
    deps.metrics.directoryUp.set({ directory: config.name }, 0);
    deps.metrics.directoryEntries.set({ directory: config.name }, 0);
    const cleartext = config.urls.filter((u) => /^ldap:\/\//i.test(u) && !/^ldap:\/\/(127\.|localhost[:/]|\[::1\])/i.test(u));
    if (config.bindDN !== '' && cleartext.length > 0) {
      deps.log.warn({ directory: config.name, urls: cleartext }, 'the bind password goes over ldap:// in clear text: use ldaps://');
    }
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
      const result = await searchDirectory(this.config, this.groups, this.#abort.signal);
      const failedOver = result.failedOver.join('; ');
      if (failedOver !== this.#failedOverLogged) {
        this.#failedOverLogged = failedOver;
        if (failedOver !== '') log.warn({ directory: this.config.name }, `directory search failed over: ${failedOver}; a later URL answered`);
      }
      const now = clock();
      const named = namedEntries(result);
      const { roleAttribute, minEntries } = this.config;
      if (named < minEntries) {
        const without = result.people.length - named;
        const why = without > 0 ? ` (${without} more have no ${roleAttribute}: a wrong roleAttribute, or an ACL hiding it?)` : '';
        this.#fail(
          `found ${named} entr${named === 1 ? 'y' : 'ies'} with a ${roleAttribute} under baseDN ${JSON.stringify(this.config.baseDN)} matching userFilter ${this.config.userFilter}${why}, fewer than minEntries (${minEntries}): taken for an outage, not a mass departure`,
        );
        return false;
      }
      if (named * 2 < result.people.length) {
        // Most people without a role name would all read as "missing".
        this.#fail(`${result.people.length - named} of the ${result.people.length} entries under userFilter have no ${roleAttribute}: a wrong roleAttribute, or an ACL hiding it`);
        return false;
      }
      if (result.references > 0 && !this.#referencesLogged) {
        this.#referencesLogged = true;
        log.warn({ directory: this.config.name, references: result.references }, 'the search returned continuation references, which pgwarden does not follow: people behind them read as missing (search the domain itself or the global catalog)');
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
      // Stopped under way: nothing failed, nothing to say.
      if (this.#stopped) return false;
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

  /**
   * Why the current answer may not be acted on by run `key` (a target and policy), or undefined
   * when it may. While a run's refusal stands, no run may act on any answer — only the run that
   * refused may look at a later one, to accept it (or refuse it again): the same bad content comes
   * back at every refresh, and another policy or target with fewer roles must not act on it.
   */
  #problem(now: number, key: string | undefined): string | undefined {
    if (this.#error !== undefined) return `the last search failed (${this.#error})`;
    const answer = this.#answer;
    if (!answer) return 'not searched yet';
    const age = now - answer.searchedAt;
    if (age >= 3 * this.config.refreshMs) return `its last answer is ${Math.round(age / 1000)}s old, older than three refresh periods`;
    const own = key === undefined ? undefined : this.#refusals.get(key);
    if (own) return own.searchedAt === answer.searchedAt ? own.message : undefined;
    const other = this.#refusals.values().next();
    return other.done ? undefined : `an answer was refused: ${other.value.message}`;
  }

  #publish(): void {
    const now = this.#deps.clock();
    // Up only when usable and no policy run still refuses an answer (kept until its next run
    // accepts one, so the gauge does not flap between a search and the next policy tick).
    const up = this.#problem(now, undefined) === undefined;
    this.#deps.metrics.directoryUp.set({ directory: this.config.name }, up ? 1 : 0);
  }

  /** What run `key` (`target/policy`; none for a command that only shows) may use now. */
  view(key?: string): DirectoryView {
    const problem = this.#problem(this.#deps.clock(), key);
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
   * decides nothing until that run accepts a later answer.
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
      void this.refresh()
        .catch(() => undefined)
        .finally(() => {
          if (this.#stopped) return;
          // A failed search is tried again soon (a blip must not cost a whole refresh period), then less often.
          const delay = this.#failures > 0 ? Math.min(this.config.refreshMs, FIRST_RETRY_MS * 2 ** (this.#failures - 1)) : this.config.refreshMs;
          this.#timer = setTimeout(loop, delay);
        });
    };
    loop();
  }

  /** Stops the schedule and a search under way (its socket is closed: a stop never waits on a hung server). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#searching?.catch(() => undefined);
  }
}

/** Every configured directory, by name. */
export class Directories {
  readonly #watchers = new Map<string, DirectoryWatcher>();

  /** `groupsOf(name)`: the `notInGroup` values the policies ask of directory `name`. */
  constructor(configs: readonly DirectoryConfig[], groupsOf: (name: string) => readonly string[], deps: DirectoryDeps) {
    for (const config of configs) this.#watchers.set(config.name, new DirectoryWatcher(config, groupsOf(config.name), deps));
  }

  get(name: string): DirectoryWatcher | undefined {
    return this.#watchers.get(name);
  }

  get all(): DirectoryWatcher[] {
    return [...this.#watchers.values()];
  }

  /** The view of directory `name` (a name the configuration checked) for run `key` (`target/policy`). */
  view(name: string, key?: string): DirectoryView {
    return this.#watchers.get(name)?.view(key) ?? { name, roles: [], roleAttribute: '', answer: undefined, problem: 'not configured' };
  }

  /** Searches every directory now, in parallel; returns the errors, one line each. */
  async refresh(): Promise<string[]> {
    const results = await Promise.all(this.all.map(async (w) => ((await w.refresh()) ? undefined : `directory ${w.config.name}: ${w.lastError ?? 'failed'}`)));
    return results.filter((r): r is string => r !== undefined);
  }

  start(): void {
    for (const w of this.#watchers.values()) w.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#watchers.values()].map((w) => w.stop()));
  }
}
