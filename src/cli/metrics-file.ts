/**
 * `--metrics-file PATH` of the manual commands (adduser, passwd, logout, offboard): they run and
 * exit, so their `pgwarden_actions_total{policy="<command>"}` goes to a node_exporter textfile
 * (see metrics/textfile.ts) instead of a /metrics endpoint.
 */
import type { ActionResult } from '../actions/types.js';
import type { Config } from '../config/load.js';
import { Metrics } from '../metrics/registry.js';
import { writeActionCounts } from '../metrics/textfile.js';

/** Adds one run's actions (not the dry-run plans) to the textfile at `path`. */
export async function recordActions(
  path: string | undefined,
  config: Config,
  actions: readonly { target: string; policy: string; action: string; result: ActionResult }[],
): Promise<void> {
  if (path === undefined) return;
  const metrics = new Metrics(config.settings.metrics);
  for (const a of actions) metrics.countAction(a.target, a.policy, a.action, a.result);
  await writeActionCounts(path, metrics);
}
