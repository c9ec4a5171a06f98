/**
 * The snapshot: one query for sessions and one for roles per target per tick, shared by every
 * policy due. Ages are computed by the server's clock (clock_timestamp, not the client's), and
 * backend_start is also carried as epoch microseconds in text: a JS Date keeps milliseconds, and
 * the kill-time re-check compares to the microsecond (DESIGN.md, Safety rules).
 *
 * Works on PostgreSQL 14–18: every pg_stat_activity and pg_roles column used here exists in 14.
 */
import type { LockSnapshot } from './locks.js';
import type { TargetDb } from './pool.js';

/** One row of pg_stat_activity, any backend type. */
export interface Session {
  readonly pid: number;
  readonly role: string | null;
  readonly superuser: boolean;
  readonly database: string | null;
  readonly application: string;
  readonly clientAddr: string | null;
  readonly clientPort: number | null;
  readonly state: string | null;
  readonly backendType: string;
  readonly backendStart: Date | null;
  /** backend_start as epoch microseconds, exact: the identity of a backend together with its pid. */
  readonly backendStartUs: string | null;
  readonly xactStart: Date | null;
  readonly queryStart: Date | null;
  readonly stateChange: Date | null;
  /** Seconds in the current state, by the server's clock. */
  readonly stateSeconds: number | null;
  readonly xactSeconds: number | null;
  readonly querySeconds: number | null;
  readonly waitEventType: string | null;
  readonly waitEvent: string | null;
  readonly query: string | null;
}

/** One role of pg_roles with what policies need to judge it. */
export interface RoleInfo {
  readonly role: string;
  readonly login: boolean;
  readonly superuser: boolean;
  readonly connLimit: number;
  /** Finite rolvaliduntil, or null for none or `infinity`. */
  readonly validUntil: Date | null;
  /** Seconds until validUntil (negative when past), by the server's clock; null when none. */
  readonly validSeconds: number | null;
  /** Roles this one is a direct member of. */
  readonly memberOf: readonly string[];
  /** Client sessions open as this role now. */
  readonly sessions: number;
}

/** Everything one target showed at one instant. */
export interface Snapshot {
  readonly target: string;
  readonly takenAt: Date;
  readonly serverVersionNum: number;
  readonly sessions: readonly Session[];
  /** Lock waits, attached only when a policy needs them (lock_blocker, onlyWhenBlocking). */
  readonly locks?: LockSnapshot;
}

export interface RoleSnapshot {
  readonly target: string;
  readonly takenAt: Date;
  readonly roles: readonly RoleInfo[];
}

/** Query text longer than this is cut in the snapshot (the server keeps at most track_activity_query_size). */
export const SNAPSHOT_QUERY_CHARS = 1024;

export const SESSIONS_SQL = `
  select a.pid,
         a.usename as role,
         -- a semi-join on the few superusers: cheaper than joining every role (10,000 of them)
         coalesce(a.usesysid in (select oid from pg_roles where rolsuper), false) as superuser,
         a.datname as database,
         a.application_name as application,
         host(a.client_addr) as client_addr,
         a.client_port,
         a.state,
         a.backend_type,
         a.backend_start,
         (extract(epoch from a.backend_start) * 1000000)::bigint::text as backend_start_us,
         a.xact_start,
         a.query_start,
         a.state_change,
         extract(epoch from (n.now - a.state_change))::float8 as state_seconds,
         extract(epoch from (n.now - a.xact_start))::float8 as xact_seconds,
         extract(epoch from (n.now - a.query_start))::float8 as query_seconds,
         a.wait_event_type,
         a.wait_event,
         left(a.query, $1) as query,
         current_setting('server_version_num')::int as server_version_num
  from pg_stat_activity a
  cross join (select clock_timestamp() as now) n
  order by a.pid`;

interface SessionRow {
  pid: number;
  role: string | null;
  superuser: boolean;
  database: string | null;
  application: string | null;
  client_addr: string | null;
  client_port: number | null;
  state: string | null;
  backend_type: string | null;
  backend_start: Date | null;
  backend_start_us: string | null;
  xact_start: Date | null;
  query_start: Date | null;
  state_change: Date | null;
  state_seconds: number | null;
  xact_seconds: number | null;
  query_seconds: number | null;
  wait_event_type: string | null;
  wait_event: string | null;
  query: string | null;
  server_version_num: number;
}

function toSession(row: SessionRow): Session {
  return {
    pid: row.pid,
    role: row.role,
    superuser: row.superuser,
    database: row.database,
    application: row.application ?? '',
    clientAddr: row.client_addr,
    clientPort: row.client_port === -1 ? null : row.client_port,
    state: row.state,
    backendType: row.backend_type ?? '',
    backendStart: row.backend_start,
    backendStartUs: row.backend_start_us,
    xactStart: row.xact_start,
    queryStart: row.query_start,
    stateChange: row.state_change,
    stateSeconds: row.state_seconds,
    xactSeconds: row.xact_seconds,
    querySeconds: row.query_seconds,
    waitEventType: row.wait_event_type,
    waitEvent: row.wait_event,
    query: row.query,
  };
}

/** One round trip: every backend of the server, with ages by the server's clock. */
export async function fetchSessions(db: TargetDb): Promise<Snapshot> {
  const { rows } = await db.query<SessionRow>(SESSIONS_SQL, [SNAPSHOT_QUERY_CHARS]);
  return {
    target: db.name,
    takenAt: new Date(),
    // Our own backend is always in the view, so the version rides along with no extra round trip.
    serverVersionNum: rows[0]?.server_version_num ?? 0,
    sessions: rows.map(toSession),
  };
}

export const ROLES_SQL = `
  select r.rolname as role,
         r.rolcanlogin as login,
         r.rolsuper as superuser,
         r.rolconnlimit as conn_limit,
         case when isfinite(r.rolvaliduntil) then r.rolvaliduntil end as valid_until,
         case when isfinite(r.rolvaliduntil)
              then extract(epoch from (r.rolvaliduntil - clock_timestamp()))::float8 end as valid_seconds,
         coalesce(m.member_of, '{}'::text[]) as member_of,
         coalesce(s.sessions, 0)::int as sessions
  from pg_roles r
  left join (
    -- from PostgreSQL 16 a membership has one row per grantor: distinct folds them
    select am.member, array_agg(distinct g.rolname::text order by g.rolname::text) as member_of
    from pg_auth_members am join pg_roles g on g.oid = am.roleid
    group by am.member
  ) m on m.member = r.oid
  left join (
    -- the function under pg_stat_activity: the view would join every role (10,000) only to
    -- name them, where a count per role id is all that is needed here
    select usesysid, count(*) as sessions
    from pg_stat_get_activity(null)
    where backend_type = 'client backend'
    group by usesysid
  ) s on s.usesysid = r.oid
  order by r.rolname`;

interface RoleRow {
  role: string;
  login: boolean;
  superuser: boolean;
  conn_limit: number;
  valid_until: Date | null;
  valid_seconds: number | null;
  member_of: string[];
  sessions: number;
}

/** One round trip: every role with expiry, direct memberships and live session count. */
export async function fetchRoles(db: TargetDb): Promise<RoleSnapshot> {
  const { rows } = await db.query<RoleRow>(ROLES_SQL);
  return {
    target: db.name,
    takenAt: new Date(),
    roles: rows.map((r) => ({
      role: r.role,
      login: r.login,
      superuser: r.superuser,
      connLimit: r.conn_limit,
      validUntil: r.valid_until,
      validSeconds: r.valid_seconds,
      memberOf: r.member_of,
      sessions: r.sessions,
    })),
  };
}

/**
 * The roles that belong to `group`, directly or through other roles: one walk down from the
 * group, instead of every role's own closure (10,000 roles, one marker).
 */
export function membersOf(roles: readonly RoleInfo[], group: string): Set<string> {
  const directMembers = new Map<string, string[]>();
  for (const r of roles) {
    for (const g of r.memberOf) {
      const list = directMembers.get(g);
      if (list) list.push(r.role);
      else directMembers.set(g, [r.role]);
    }
  }
  const members = new Set<string>();
  const stack = [...(directMembers.get(group) ?? [])];
  while (stack.length > 0) {
    const next = stack.pop() as string;
    if (members.has(next)) continue;
    members.add(next);
    stack.push(...(directMembers.get(next) ?? []));
  }
  return members;
}
