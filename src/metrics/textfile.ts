/**
 * Manual commands run and exit: their `pgwarden_actions_total` can go to a file in Prometheus text
 * format for node_exporter's textfile collector (`--collector.textfile.directory`). Counters must
 * only grow, so the counts already in the file are added to, and the file is replaced atomically
 * (written beside it, then renamed) so the collector never reads half a file.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { Metrics } from './registry.js';

const SERIES = /^pgwarden_actions_total\{(.*)\}\s+(\S+)\s*$/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

function unescapeLabel(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/** The `pgwarden_actions_total` series of a textfile, as label sets and values. */
export function parseActionCounts(text: string): { labels: Record<string, string>; value: number }[] {
  const series: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const found = SERIES.exec(line);
    if (!found) continue;
    const value = Number(found[2]);
    if (!Number.isFinite(value) || value < 0) continue;
    const labels: Record<string, string> = {};
    for (const [, name, raw] of (found[1] ?? '').matchAll(LABEL)) labels[name as string] = unescapeLabel(raw as string);
    series.push({ labels, value });
  }
  return series;
}

/** Adds this run's action counts to those in `path` and writes them back. */
export async function writeActionCounts(path: string, metrics: Metrics): Promise<void> {
  const previous = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  for (const { labels, value } of parseActionCounts(previous)) metrics.actions.inc(labels, value);
  const text = await metrics.registry.getSingleMetricAsString('pgwarden_actions_total');
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${text}\n`, { mode: 0o644 });
  await rename(temporary, path);
}
