/**
 * `pgwarden doctor [--target NAME]`: per target, who pgwarden is connected as and one check per
 * capability a configured policy or a command needs, with the statement that grants what is
 * missing. Exit 1 when a gap stops a configured policy (or a target cannot be reached); gaps only
 * a command would hit are listed and leave the exit code alone.
 */
import { COMMAND_NEEDS, directoryCheck, doctorSettings, policiesStopped, type Check, type DoctorSettings } from '../doctor/checks.js';
import { examineTarget, type TargetReport } from '../doctor/examine.js';
import { fetchRoles } from '../db/snapshot.js';
import type { TargetDb } from '../db/pool.js';
import { compileGlobs } from '../config/glob.js';
import { roleProtection } from '../actions/role-actions.js';
import type { Directories } from '../directory/watcher.js';
import { directoriesOf } from '../policies/registry.js';
import { loadContext, searchAskedDirectories, withTargets, type GlobalOptions } from './context.js';
import type { Io, TextSink } from './io.js';
import { printJson } from './output.js';

/** DESIGN.md `doctor` shape. */
export interface DoctorJson {
  targets: TargetReport[];
}

const STATUS_WIDTH = 8;

/** The header line of a target: who pgwarden is there and what it holds. */
export function headerLine(report: TargetReport): string {
  const a = report.attributes;
  if (a === null) return `target ${report.target}: cannot read what role ${JSON.stringify(report.role)} may do`;
  const acting = a.currentRole !== report.role ? ` (acting as ${JSON.stringify(a.currentRole)})` : '';
  const attributes = [
    `superuser ${a.superuser ? 'yes' : 'no'}`,
    `createrole ${a.createRole ? 'yes' : 'no'}`,
    ...(a.inherit ? [] : ['noinherit']),
    a.memberOf.length > 0 ? `member of ${a.memberOf.join(', ')}` : 'member of no role',
    ...(a.adminOnly > 0 ? [`ADMIN OPTION only on ${a.adminOnly} role${a.adminOnly === 1 ? '' : 's'}`] : []),
  ];
  // server_version may carry the packager's suffix ("15.20 (Debian 15.20-0+deb12u1)"): the number is enough here.
  const version = (report.server ?? '?').split(' ')[0] ?? '?';
  return `target ${report.target}: connected as ${JSON.stringify(report.role)}${acting} (PostgreSQL ${version}): ${attributes.join(', ')}`;
}

/** Who needs a check, in words: "every policy and command" when that is what the list says. */
function neededByText(check: Check, settings: DoctorSettings): string {
  const all = [...settings.policies.map((p) => p.name), ...COMMAND_NEEDS.everything];
  return all.every((n) => check.neededBy.includes(n)) ? 'every policy and command' : check.neededBy.join(', ');
}

/** One check as text: status, name, who needs it and why; the fix on its own line. */
export function checkLines(check: Check, nameWidth: number, settings: DoctorSettings): string[] {
  const status = (check.ok ? 'ok' : 'MISSING').padEnd(STATUS_WIDTH);
  const lines = [`${status}${check.name.padEnd(nameWidth)}  needed by ${neededByText(check, settings)}: ${check.detail}`];
  if (!check.ok && check.fix !== null) lines.push(`${' '.repeat(STATUS_WIDTH)}fix: ${check.fix};`);
  return lines;
}

/** The closing line of a target: can every configured policy do its job? */
export function verdictLine(report: TargetReport, settings: DoctorSettings): string {
  if (report.checks.some((c) => c.name === 'connect' && !c.ok)) {
    return `target ${report.target}: not reachable, so nothing runs there${settings.policies.length > 0 ? ` (${settings.policies.length} configured policies)` : ''}`;
  }
  const stopped = policiesStopped(report.checks, settings);
  const commandGaps = report.checks.filter((c) => !c.ok).length;
  if (stopped.length > 0) {
    return `target ${report.target}: ${stopped.length} of ${settings.policies.length} configured policies cannot do all of their job: ${stopped.join(', ')}`;
  }
  const policies = settings.policies.length === 0 ? 'no policy is configured here' : 'every configured policy can do its job';
  return `target ${report.target}: ${policies}${commandGaps > 0 ? `; ${commandGaps} gap${commandGaps === 1 ? '' : 's'} only commands would hit` : ''}`;
}

function printReport(out: TextSink, report: TargetReport, settings: DoctorSettings): void {
  out.write(`${headerLine(report)}\n`);
  const width = Math.max(...report.checks.map((c) => c.name.length));
  for (const check of report.checks) for (const line of checkLines(check, width, settings)) out.write(`${line}\n`);
  out.write(`${verdictLine(report, settings)}\n`);
}

/** The `directory` checks of one target: per directory its policies ask, the search and the covered roles without an entry. */
async function directoryChecks(db: TargetDb, settings: DoctorSettings, directories: Directories, reachable: boolean): Promise<Check[]> {
  const asked = new Map<string, string[]>();
  for (const p of settings.policies) for (const d of directoriesOf(p)) asked.set(d.name, [...(asked.get(d.name) ?? []), p.name]);
  if (asked.size === 0) return [];
  const snapshot = reachable ? await fetchRoles(db).catch(() => undefined) : undefined;
  return [...asked].map(([name, neededBy]) => {
    const watcher = directories.get(name);
    const answer = watcher?.lastAnswer;
    if (!watcher || !answer || watcher.lastError !== undefined) {
      return directoryCheck({ name, neededBy, error: watcher?.lastError ?? 'not searched', covered: 0, withoutEntry: [] });
    }
    const judged = compileGlobs(watcher.config.roles);
    const covered = Array.from(snapshot?.roles ?? []).filter((r) => r.login && judged(r.role) && roleProtection(r, settings.exempt, snapshot?.self ?? { role: '', currentRole: '', bootstrapRole: '' }) === null);
    const withoutEntry = covered.filter((r) => !answer.byRole.has(r.role.toLowerCase())).map((r) => r.role);
    const entries = covered.flatMap((r) => answer.byRole.get(r.role.toLowerCase()) ?? []);
    return directoryCheck({
      name,
      neededBy,
      entries: answer.entries,
      tookMs: answer.tookMs,
      covered: covered.length,
      withoutEntry,
      ...(watcher.config.disabledFilter !== '' ? { disabled: entries.filter((e) => e.disabled).length } : {}),
      outOfGroups: watcher.groups.map((group) => ({ group, count: entries.filter((e) => !e.groups.has(group)).length })),
    });
  });
}

export async function runDoctor(options: { target?: string }, globals: GlobalOptions, io: Io): Promise<void> {
  const context = loadContext(globals, io);
  // A failed search is the `directory` check's own detail (lastError): not said twice.
  const { directories } = await searchAskedDirectories(context);
  const results = await withTargets(context, options.target, async (dbs) => {
    // Targets are independent: one that hangs does not hold up the others' reading.
    return Promise.all(
      dbs.map(async (db) => {
        const settings = doctorSettings(context.config, db.name);
        const report = await examineTarget(db, settings);
        const reachable = !report.checks.some((c) => c.name === 'connect');
        const extra = await directoryChecks(db, settings, directories, reachable);
        return { settings, report: extra.length > 0 ? { ...report, checks: [...report.checks, ...extra] } : report };
      }),
    );
  });
  if (context.json) {
    await printJson(io.stdout, { targets: results.map((r) => r.report) } satisfies DoctorJson);
  } else {
    results.forEach(({ report, settings }, i) => {
      if (i > 0) io.stdout.write('\n');
      printReport(io.stdout, report, settings);
    });
  }
  if (results.some(({ report, settings }) => policiesStopped(report.checks, settings).length > 0 || report.checks.some((c) => c.name === 'connect'))) {
    io.raiseExitCode(1);
  }
}
