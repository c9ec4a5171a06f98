/**
 * `pgwarden owned ROLE [--privileges]`: every object ROLE owns, in every database of the server
 * that holds any (pg_shdepend says which), and with --privileges what it was granted, by whom.
 */
import { fetchOwned, type OwnedObject, type UnvisitedDatabase } from '../db/owned.js';
import { fetchGrantsTo, type GrantTo } from '../db/privileges.js';
import { loadContext, requireRole, singleTarget, withTargets, type GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { printJson, printTable } from './output.js';

export interface OwnedOptions {
  target?: string;
  privileges?: boolean;
}

export async function runOwned(role: string, options: OwnedOptions, globals: GlobalOptions, io: Io): Promise<void> {
  const context = loadContext(globals, io);
  const report = await withTargets(context, options.target, async (dbs) => {
    const db = singleTarget(dbs);
    await requireRole(db, role);
    const owned = await fetchOwned(db, role);
    const granted = options.privileges ? await fetchGrantsTo(db, role, owned.footprint) : undefined;
    return { owned, granted };
  });
  const { objects, unvisited } = report.owned;
  const entries: (OwnedObject | UnvisitedDatabase)[] = [...objects, ...unvisited];
  const missed = [...unvisited, ...(report.granted?.unvisited ?? [])];
  if (context.json) {
    await printJson(io.stdout, report.granted ? { owned: entries, privileges: [...report.granted.grants, ...report.granted.unvisited] } : entries);
  } else {
    await printTable<OwnedObject | UnvisitedDatabase>(
      io.stdout,
      [
        { header: 'DATABASE', value: (o) => o.database },
        { header: 'TYPE', value: (o) => ('objects' in o ? `unvisited (${o.objects})` : o.type) },
        { header: 'SCHEMA', value: (o) => o.schema },
        { header: 'NAME', value: (o) => o.name ?? '', max: 80 },
      ],
      entries,
      `${role} owns nothing`,
    );
    if (report.granted) {
      io.stdout.write(`\nprivileges granted to ${role}:\n`);
      await printTable<GrantTo>(
        io.stdout,
        [
          { header: 'DATABASE', value: (g) => g.database },
          { header: 'OBJECT', value: (g) => g.object, max: 60 },
          { header: 'PRIVILEGES', value: (g) => g.privileges.join(', '), max: 40 },
          { header: 'GRANTOR', value: (g) => g.grantor },
          { header: 'GRANTABLE', value: (g) => (g.grantable ? 'yes' : '') },
        ],
        report.granted.grants,
        '(none)',
      );
    }
  }
  // The list is incomplete where a database could not be entered: say so, and fail the command.
  for (const u of missed) {
    io.stderr.write(`pgwarden: database ${JSON.stringify(u.database)} holds ${u.objects} of ${JSON.stringify(role)}'s entries but was not entered: ${u.reason}\n`);
  }
  if (missed.length > 0) io.raiseExitCode(1);
}
