/** `pgwarden owned ROLE`: every object ROLE owns, in every database of the server. */
import type { Command } from 'commander';
import { fetchOwned, type OwnedObject } from '../db/owned.js';
import { loadContext, requireRole, singleTarget, withTargets, type GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { printJson, printTable } from './output.js';

interface OwnedOptions {
  target?: string;
}

async function runOwned(role: string, options: OwnedOptions, globals: GlobalOptions, io: Io): Promise<void> {
  const context = loadContext(globals, io);
  const report = await withTargets(context, options.target, async (dbs) => {
    const db = singleTarget(dbs);
    await requireRole(db, role);
    return fetchOwned(db, role);
  });
  if (context.json) printJson(io.stdout, report.objects);
  else {
    printTable<OwnedObject>(
      io.stdout,
      [
        { header: 'DATABASE', value: (o) => o.database },
        { header: 'TYPE', value: (o) => o.type },
        { header: 'SCHEMA', value: (o) => o.schema },
        { header: 'NAME', value: (o) => o.name, max: 80 },
      ],
      report.objects,
      `${role} owns nothing in the databases visited`,
    );
  }
  // The list is incomplete where a database could not be entered: say so, and fail the command.
  for (const s of report.skipped) {
    io.stderr.write(`pgwarden: database ${JSON.stringify(s.database)} not searched: ${s.reason}\n`);
  }
  if (report.skipped.length > 0) io.raiseExitCode(1);
}

export function registerOwned(program: Command, io: Io): void {
  program
    .command('owned')
    .description('every object ROLE owns in every database: tables, views, sequences, functions, schemas, types, databases')
    .argument('<role>', 'the role (exact name, any characters)')
    .option('--target <name>', 'the target (with several configured)')
    .action(async (role: string, options: OwnedOptions, command: Command) => {
      await runOwned(role, options, command.optsWithGlobals<GlobalOptions>(), io);
    });
}
