/** `pgwarden sessions`: who is connected (the DBA's pg_stat_activity query), per target. */
import { connectionsUsed, fetchSessions, takesSlot, type Session, type Snapshot } from '../db/snapshot.js';
import { UsageError } from '../errors.js';
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

export interface SessionsOptions {
  role?: string;
  database?: string;
  state?: string;
  all?: boolean;
  target?: string;
  summary?: boolean;
}

/** `sessions --summary`: a target's connection slots, and who holds the idle ones. */
export interface ConnectionSummaryJson {
  target: string;
  /** Client backends (pgwarden's own and hidden ones included: each takes a slot). */
  used: number;
  /** max_connections minus superuser_reserved_connections and reserved_connections (16+). */
  usable: number;
  maxConnections: number;
  superuserReserved: number;
  reserved: number;
  /** Client backends per state (`hidden` for those whose state pgwarden cannot read). */
  byState: Record<string, number>;
  /** The groups (role, database, application) holding the most idle sessions (idle, or idle in a transaction), most first. */
  top: { role: string | null; database: string | null; application: string; idle: number; idleInTransaction: number; total: number; oldestIdleSeconds: number | null }[];
}

/** How many groups `--summary` lists. */
const SUMMARY_TOP = 10;

/** The summary of one snapshot: slots used and usable, client backends per state, the top groups by idle sessions. */
export function summarizeConnections(snapshot: Snapshot, top = SUMMARY_TOP): ConnectionSummaryJson {
  const byState: Record<string, number> = {};
  const groups = new Map<string, ConnectionSummaryJson['top'][number]>();
  for (const s of snapshot.sessions) {
    if (!takesSlot(s)) continue;
    const state = s.hidden ? 'hidden' : (s.state ?? 'unknown');
    byState[state] = (byState[state] ?? 0) + 1;
    const key = JSON.stringify([s.role, s.database, s.application]);
    const group = groups.get(key) ?? { role: s.role, database: s.database, application: s.application, idle: 0, idleInTransaction: 0, total: 0, oldestIdleSeconds: null };
    group.total += 1;
    if (s.state === 'idle') group.idle += 1;
    if (s.state === 'idle in transaction' || s.state === 'idle in transaction (aborted)') group.idleInTransaction += 1;
    if (s.state !== null && s.state.startsWith('idle')) group.oldestIdleSeconds = Math.max(group.oldestIdleSeconds ?? 0, s.stateSeconds ?? 0);
    groups.set(key, group);
  }
  const { maxConnections, superuserReserved, reserved, usable } = snapshot.slots;
  return {
    target: snapshot.target,
    used: connectionsUsed(snapshot.sessions),
    usable,
    maxConnections,
    superuserReserved,
    reserved,
    byState,
    top: [...groups.values()]
      .filter((g) => g.idle + g.idleInTransaction > 0)
      .sort((a, b) => b.idle + b.idleInTransaction - (a.idle + a.idleInTransaction) || (b.oldestIdleSeconds ?? 0) - (a.oldestIdleSeconds ?? 0))
      .slice(0, top),
  };
}

async function printSummary(io: Io, summaries: readonly ConnectionSummaryJson[]): Promise<void> {
  for (const [i, sum] of summaries.entries()) {
    if (i > 0) io.stdout.write('\n');
    const percent = sum.usable > 0 ? Math.round((100 * sum.used) / sum.usable) : 0;
    const reservedText = `${sum.superuserReserved} reserved for superusers${sum.reserved > 0 ? `, ${sum.reserved} for pg_use_reserved_connections` : ''}`;
    io.stdout.write(`target ${sum.target}: ${sum.used} of ${sum.usable} usable connection slots taken (${percent}%; max_connections ${sum.maxConnections}, ${reservedText})\n`);
    const states = Object.entries(sum.byState).sort((a, b) => b[1] - a[1]);
    io.stdout.write(`client backends by state: ${states.length > 0 ? states.map(([state, n]) => `${state} ${n}`).join(', ') : 'none'}\n`);
    await printTable(
      io.stdout,
      [
        { header: 'ROLE', value: (g: ConnectionSummaryJson['top'][number]) => g.role, max: 24 },
        { header: 'DATABASE', value: (g) => g.database, max: 24 },
        { header: 'APPLICATION', value: (g) => g.application, max: 24 },
        { header: 'IDLE', value: (g) => g.idle, right: true },
        { header: 'IDLE IN TX', value: (g) => g.idleInTransaction, right: true },
        { header: 'TOTAL', value: (g) => g.total, right: true },
        { header: 'OLDEST IDLE', value: (g) => age(g.oldestIdleSeconds), right: true },
      ],
      sum.top,
      'no idle sessions',
    );
  }
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

export async function runSessions(options: SessionsOptions, globals: GlobalOptions, io: Io): Promise<void> {
  const context = loadContext(globals, io);
  if (options.summary) {
    const filter = (['role', 'database', 'state', 'all'] as const).find((k) => options[k] !== undefined);
    if (filter !== undefined) throw new UsageError(`--summary counts every client backend: it takes no --${filter}`);
    const summaries = await withTargets(context, options.target, async (dbs) => {
      const out: ConnectionSummaryJson[] = [];
      for (const db of dbs) {
        const snapshot = await fetchSessions(db);
        warnHidden(io, snapshot);
        out.push(summarizeConnections(snapshot));
      }
      return out;
    });
    if (context.json) await printJson(io.stdout, summaries);
    else await printSummary(io, summaries);
    return;
  }
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
    await printJson(io.stdout, rows);
    return;
  }
  const several = context.config.targets.length > 1;
  await printTable(
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
