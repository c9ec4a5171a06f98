/**
 * `pgwarden access ROLE [--database D] [--schema S] [--table T]`: the role's effective rights,
 * through its memberships, in every database (or one): CONNECT per database, USAGE and CREATE per
 * schema, object privileges counted per schema and kind, and the default privileges that will
 * apply to new objects. With `--table`, every privilege on that relation and, where one is
 * missing, why — gate by gate, in plain words.
 */
import { databaseProblems, explainTable, loginProblems, quoted, rightReport, type RightReport, type TableReport } from '../access/explain.js';
import {
  fetchDatabaseFacts,
  fetchRoleFacts,
  fetchTableFacts,
  findRelations,
  visitDatabaseAccess,
  type DefaultPrivilegeFacts,
  type ObjectCounts,
  type RoleFacts,
} from '../db/access.js';
import { forEachDatabase, type SkippedDatabase } from '../db/databases.js';
import type { Queryable, TargetDb } from '../db/pool.js';
import { UsageError } from '../errors.js';
import { loadContext, requireDatabase, singleTarget, withTargets, type GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { printJson, printTable } from './output.js';

export interface AccessOptions {
  database?: string;
  schema?: string;
  table?: string;
  target?: string;
}

export interface SchemaReport {
  readonly schema: string;
  readonly owner: string;
  readonly usage: RightReport;
  readonly create: RightReport;
  readonly objects: readonly ObjectCounts[];
}

export interface DatabaseReport {
  readonly database: string;
  readonly owner: string;
  readonly allowConnections: boolean;
  readonly connect: RightReport;
  readonly create: RightReport;
  readonly temporary: RightReport;
  /** Why the role cannot enter it (empty: it can). */
  readonly problems: string[];
  /** null when pgwarden could not enter the database to look (see `skipped`). */
  readonly schemas: SchemaReport[] | null;
  readonly defaultPrivileges: DefaultPrivilegeFacts[] | null;
}

/** The JSON shape of `access` (README). */
export interface AccessReport {
  readonly role: string;
  readonly login: boolean;
  readonly superuser: boolean;
  readonly validUntil: string | null;
  readonly expired: boolean;
  readonly memberOf: RoleFacts['memberOf'];
  /** Why the role cannot log in at all (empty: it can). */
  readonly problems: string[];
  readonly databases: DatabaseReport[];
  readonly skipped: SkippedDatabase[];
  readonly table?: TableReport;
}

async function buildReport(options: AccessOptions, role: string, globals: GlobalOptions, io: Io): Promise<AccessReport> {
  const context = loadContext(globals, io);
  return withTargets(context, options.target, async (dbs) => {
    const db = singleTarget(dbs);
    if (options.database !== undefined) await requireDatabase(db, options.database);
    const facts = await fetchRoleFacts(db, role);
    if (!facts) throw new UsageError(`role ${JSON.stringify(role)} does not exist on target ${db.name}`);
    // --table alone: the one database that has it (the report then covers that database).
    const scope = { ...options, database: options.database ?? (options.table !== undefined ? await locateTable(db, options.table, options.schema) : undefined) };
    const databases = await fetchDatabaseFacts(db, role, scope.database);
    const visit = await visitDatabaseAccess(db, role, scope);
    const inside = new Map(visit.results.map((r) => [r.database, r.value]));

    let table: TableReport | undefined;
    if (options.table !== undefined) {
      const database = databases.find((d) => d.database === scope.database);
      if (!database) throw new Error(`database ${JSON.stringify(scope.database)} disappeared while it was being read`);
      const client = await db.connectTo(database.database);
      try {
        const found = await findTable(client, options.table, options.schema);
        if (found.length === 0) {
          throw new UsageError(`--table: no table, view or sequence ${JSON.stringify(options.table)}${options.schema !== undefined ? ` in schema ${JSON.stringify(options.schema)}` : ''} in database ${JSON.stringify(database.database)}`);
        }
        if (found.length > 1) {
          throw new UsageError(`--table: ${JSON.stringify(options.table)} is in several schemas (${found.map((f) => f.schema).join(', ')}): choose one with --schema`);
        }
        table = explainTable(facts, database, await fetchTableFacts(client, role, (found[0] as { oid: string }).oid));
      } finally {
        await client.end().catch(() => undefined);
      }
    }

    return {
      role: facts.role,
      login: facts.login,
      superuser: facts.superuser,
      validUntil: facts.validUntil,
      expired: facts.expired,
      memberOf: facts.memberOf,
      problems: loginProblems(facts),
      databases: databases.map((d) => {
        const there = inside.get(d.database);
        return {
          database: d.database,
          owner: d.owner,
          allowConnections: d.allowConnections,
          connect: rightReport(d.connect, facts),
          create: rightReport(d.create, facts),
          temporary: rightReport(d.temporary, facts),
          problems: databaseProblems(d, facts),
          schemas:
            there?.schemas.map((s) => ({
              schema: s.schema,
              owner: s.owner,
              usage: rightReport(s.usage, facts),
              create: rightReport(s.create, facts),
              objects: s.objects,
            })) ?? null,
          defaultPrivileges: there?.defaultPrivileges ?? null,
        };
      }),
      skipped: visit.skipped,
      ...(table ? { table } : {}),
    };
  });
}

/** Relations named `table` (`schema.table` too, when no relation has the whole text as its name). */
async function findTable(client: Queryable, table: string, schema: string | undefined): Promise<{ oid: string; schema: string }[]> {
  const found = await findRelations(client, table, schema);
  const dot = table.indexOf('.');
  if (found.length > 0 || schema !== undefined || dot <= 0) return found;
  return findRelations(client, table.slice(dot + 1), table.slice(0, dot));
}

/** The database holding `table` when --database was not given: exactly one must. */
async function locateTable(db: TargetDb, table: string, schema: string | undefined): Promise<string> {
  const visit = await forEachDatabase(db, async (client) => (await findTable(client, table, schema)).length > 0);
  const holding = visit.results.filter((r) => r.value).map((r) => r.database);
  const unsearched = visit.skipped.length > 0 ? ` (not searched: ${visit.skipped.map((s) => s.database).join(', ')})` : '';
  if (holding.length === 0) throw new UsageError(`--table: no table, view or sequence ${JSON.stringify(table)} in any database${unsearched}`);
  if (holding.length > 1) throw new UsageError(`--table: ${JSON.stringify(table)} is in several databases (${holding.join(', ')}): choose one with --database`);
  return holding[0] as string;
}

function yesVia(right: RightReport): string {
  return right.granted ? `yes${right.via.length > 0 ? ` (${right.via.join(', ')})` : ''}` : 'no';
}

function countsText(objects: ObjectCounts): string {
  const held = Object.entries(objects.privileges).filter(([, n]) => n > 0);
  return held.length === 0 ? 'none' : held.map(([p, n]) => (n === objects.total ? p : `${p} ${n}`)).join(', ');
}

async function printReport(io: Io, report: AccessReport): Promise<void> {
  const out = io.stdout;
  const groups = report.memberOf.map((m) => `${m.role}${m.inherits ? '' : m.canSet ? ' (no inherit: SET ROLE needed)' : ' (neither inherit nor SET: ADMIN only)'}`);
  out.write(
    `role ${report.role}: ${report.superuser ? 'SUPERUSER, ' : ''}${report.login ? 'LOGIN' : 'NOLOGIN'}, ` +
      `valid until ${report.validUntil ?? 'no expiry'}${report.expired ? ' (passed)' : ''}` +
      `${groups.length > 0 ? `, member of ${groups.join(', ')}` : ''}\n`,
  );
  for (const p of report.problems) out.write(`problem: ${p}\n`);
  out.write('\n');
  await printTable(
    out,
    [
      { header: 'DATABASE', value: (d: DatabaseReport) => d.database },
      { header: 'CONNECT', value: (d) => yesVia(d.connect), max: 40 },
      { header: 'CREATE', value: (d) => yesVia(d.create), max: 30 },
      { header: 'TEMPORARY', value: (d) => yesVia(d.temporary), max: 30 },
    ],
    report.databases,
    'no database',
  );
  for (const d of report.databases) for (const p of d.problems) out.write(`  ${d.database}: ${p}\n`);

  const rows = report.databases.flatMap((d) =>
    (d.schemas ?? []).flatMap((s) =>
      (s.objects.length > 0 ? s.objects : [null]).map((o) => ({ database: d.database, schema: s, objects: o })),
    ),
  );
  out.write('\n');
  await printTable(
    out,
    [
      { header: 'DATABASE', value: (r: (typeof rows)[number]) => r.database },
      { header: 'SCHEMA', value: (r) => r.schema.schema },
      { header: 'USAGE', value: (r) => yesVia(r.schema.usage), max: 30 },
      { header: 'CREATE', value: (r) => yesVia(r.schema.create), max: 30 },
      { header: 'KIND', value: (r) => r.objects?.kind ?? '-' },
      { header: 'OBJECTS', value: (r) => r.objects?.total ?? 0, right: true },
      { header: 'PRIVILEGES (on how many; all when no count)', value: (r) => (r.objects ? countsText(r.objects) : '') },
    ],
    rows,
    'no schema',
  );
  const defaults = report.databases.flatMap((d) => (d.defaultPrivileges ?? []).map((p) => ({ database: d.database, ...p })));
  if (defaults.length > 0) {
    out.write('\ndefault privileges (new objects):\n');
    for (const p of defaults) {
      out.write(
        `  ${p.database}: ${p.objectType} created by ${p.creator}${p.schema !== null ? ` in schema ${p.schema}` : ''}: ` +
          `${p.privileges.join(', ')} to ${p.grantee}${p.how === 'member_only' ? ' (not inherited)' : ''}\n`,
      );
    }
  }
  if (report.table) {
    const t = report.table;
    out.write(`\n${t.kind} ${quoted(t.schema)}.${quoted(t.name)} in ${quoted(t.database)} (owner ${quoted(t.owner)}):\n`);
    for (const p of t.privileges) {
      const head = `  ${p.privilege.padEnd(10)} ${p.usable ? 'usable' : 'denied'}`;
      if (p.usable) out.write(`${head}  via ${p.via.join(', ')}\n`);
      else out.write(`${head}  ${p.reasons.join('; ')}\n`);
    }
    for (const n of t.notes) out.write(`  note: ${n}\n`);
  }
}

export async function runAccess(role: string, options: AccessOptions, globals: GlobalOptions, io: Io): Promise<void> {
  const report = await buildReport(options, role, globals, io);
  if (globals.json) await printJson(io.stdout, report);
  else await printReport(io, report);
  // The answer is incomplete where a database could not be entered: say so, and fail the command.
  for (const s of report.skipped) io.stderr.write(`pgwarden: database ${JSON.stringify(s.database)} not examined: ${s.reason}\n`);
  if (report.skipped.length > 0) io.raiseExitCode(1);
}
