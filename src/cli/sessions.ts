/** `pgwarden sessions`: who is connected (the DBA's pg_stat_activity query), per target. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { SESSION_STATES } from '../config/policies.js';
import { fetchSessions, type Session } from '../db/snapshot.js';
import { loadContext, requireDatabase, requireRole, warnHidden, withTargets, type GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { age, printJson, printTable } from './output.js';

/** DESIGN.md `sessions` shape. */
export interface SessionJson {
  target: string;
  pid: number;
  role: string | null;
  database: string | null;
  application: string;
  clientAddr: string | null;
  state: string | null;
  backendType: string;
  backendStart: Date | null;
  xactStart: Date | null;
  queryStart: Date | null;
  stateChange: Date | null;
  stateSeconds: number | null;
  xactSeconds: number | null;
  waitEventType: string | null;
  waitEvent: string | null;
  query: string | null;
}

const QUERY_CHARS = 200;

interface SessionsOptions {
  role?: string;
  database?: string;
  state?: string;
  all?: boolean;
  target?: string;
}

/** The filter of the command: client backends (unless --all), and the given role, database, state. */
export function selectSessions(sessions: readonly Session[], options: SessionsOptions, ownPids: ReadonlySet<number>): Session[] {
  return sessions.filter(
    (s) =>
      !ownPids.has(s.pid) &&
      (options.all || s.backendType === 'client backend') &&
      (options.role === undefined || s.role === options.role) &&
      (options.database === undefined || s.database === options.database) &&
      (options.state === undefined || s.state === options.state),
  );
}

export function toSessionJson(target: string, s: Session): SessionJson {
  return {
    target,
    pid: s.pid,
    role: s.role,
    database: s.database,
    application: s.application,
    clientAddr: s.clientAddr,
    state: s.state,
    backendType: s.backendType,
    backendStart: s.backendStart,
    xactStart: s.xactStart,
    queryStart: s.queryStart,
    stateChange: s.stateChange,
    stateSeconds: s.stateSeconds,
    xactSeconds: s.xactSeconds,
    waitEventType: s.waitEventType,
    waitEvent: s.waitEvent,
    query: s.query === null ? null : s.query.slice(0, QUERY_CHARS),
  };
}

async function runSessions(options: SessionsOptions, globals: GlobalOptions, io: Io): Promise<void> {
  const context = loadContext(globals, io);
  const rows = await withTargets(context, options.target, async (dbs) => {
    const out: SessionJson[] = [];
    for (const db of dbs) {
      if (options.role !== undefined) await requireRole(db, options.role);
      if (options.database !== undefined) await requireDatabase(db, options.database);
      const snapshot = await fetchSessions(db);
      warnHidden(io, snapshot);
      out.push(...selectSessions(snapshot.sessions, options, db.ownPids).map((s) => toSessionJson(db.name, s)));
    }
    return out;
  });
  if (context.json) {
    printJson(io.stdout, rows);
    return;
  }
  const several = context.config.targets.length > 1;
  printTable(
    io.stdout,
    [
      ...(several ? [{ header: 'TARGET', value: (r: SessionJson) => r.target }] : []),
      { header: 'PID', value: (r) => r.pid, right: true },
      { header: 'ROLE', value: (r) => r.role, max: 24 },
      { header: 'DATABASE', value: (r) => r.database, max: 24 },
      { header: 'APPLICATION', value: (r) => r.application, max: 20 },
      { header: 'CLIENT', value: (r) => r.clientAddr ?? (r.backendType === 'client backend' ? 'local' : '') },
      { header: 'STATE', value: (r) => r.state ?? r.backendType, max: 29 },
      { header: 'IN STATE', value: (r) => age(r.stateSeconds), right: true },
      { header: 'XACT AGE', value: (r) => age(r.xactSeconds), right: true },
      { header: 'WAITING ON', value: (r) => (r.waitEventType ? `${r.waitEventType}:${r.waitEvent ?? ''}` : ''), max: 24 },
      { header: 'QUERY', value: (r) => r.query, max: 60 },
    ],
    rows,
    'no sessions match',
  );
}

export function registerSessions(program: Command, io: Io): void {
  program
    .command('sessions')
    .description("active connections: pg_stat_activity's client backends, with ages by the server's clock")
    .option('--role <role>', 'only sessions of this role')
    .option('--database <database>', 'only sessions in this database')
    .addOption(new Option('--state <state>', 'only sessions in this state').choices(SESSION_STATES))
    .option('--all', 'every backend type, not only client backends')
    .option('--target <name>', 'only this target (with several configured)')
    .action(async (options: SessionsOptions, command: Command) => {
      await runSessions(options, command.optsWithGlobals<GlobalOptions>(), io);
    });
}
