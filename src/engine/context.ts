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

/** What one policy run on one target found and did. */
export interface RunReport {
  readonly violations: ViolationJson[];
  readonly actions: ActionJson[];
  /** Set when the run could not complete (snapshot or statement failure). */
  readonly error?: string;
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
  /** Milliseconds since epoch. */
  readonly clock: () => number;
}
