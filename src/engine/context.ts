/** What a policy run needs, handed to the session and role pipelines by the engine. */
import type { Logger } from 'pino';
import type { Config } from '../config/load.js';
import type { ActionJson, ViolationJson } from '../actions/types.js';
import type { Metrics } from '../metrics/registry.js';
import type { Directories } from '../directory/watcher.js';
import type { RunHistory } from './history.js';
import type { Readiness } from './readiness.js';
import type { SnapshotReader } from './snapshots.js';
import type { Warnings } from './warnings.js';
import type { AuditRepeats } from './audit-repeats.js';

/** What one policy run on one target found and did. */
export interface RunReport {
  /** DESIGN.md's violation shapes (built when first read: the daemon never reads them). */
  readonly violations: ViolationJson[];
  /** DESIGN.md's action shapes (built when first read). */
  readonly actions: ActionJson[];
  /** How many violations, and whether an action failed: what the metrics need, without the shapes. */
  readonly counts: { readonly violations: number; readonly failed: boolean };
  /** Set when the run could not complete (snapshot or statement failure). */
  readonly error?: string;
}

/**
 * A report whose JSON shapes are built only when read (`run --once`, `plan`): a daemon's tick
 * records metrics and audit lines and drops the report.
 */
export function lazyReport<V, A extends { readonly result: string }>(
  violations: readonly V[],
  actions: readonly A[],
  toJson: { violation: (v: V) => ViolationJson; action: (a: A) => ActionJson },
  error?: string,
): RunReport {
  let violationJson: ViolationJson[] | undefined;
  let actionJson: ActionJson[] | undefined;
  return {
    get violations() {
      return (violationJson ??= violations.map(toJson.violation));
    },
    get actions() {
      return (actionJson ??= actions.map(toJson.action));
    },
    counts: { violations: violations.length, failed: actions.some((a) => a.result === 'failed') },
    ...(error !== undefined ? { error } : {}),
  };
}

export interface RunContext {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly audit: Logger;
  readonly history: RunHistory;
  readonly warnings: Warnings;
  readonly readiness: Readiness;
  readonly snapshots: SnapshotReader;
  /** The directories' last answers (searched off the ticks). */
  readonly directories: Directories;
  /** Which audit lines of a run that does not act are due (audit.repeatAfter). */
  readonly auditRepeats: AuditRepeats;
  /** Milliseconds since epoch. */
  readonly clock: () => number;
}
