/**
 * The snapshot: one query for sessions and one for roles per target per tick, shared by every
 * policy due. Ages are by the server's clock (one clock_timestamp() per query, not the client's),
 * and backend_start is also carried as epoch microseconds in text: a JS Date keeps milliseconds,
 * and the kill-time re-check compares to the microsecond (DESIGN.md, Safety rules).
 *
 * Works on PostgreSQL 14–18: every pg_stat_activity and pg_roles column used here exists in 14.
 */
import type { LockSnapshot } from './locks.js';
import type { TargetDb } from './pool.js';
import { quoteIdent } from './quote.js';

/**
 * May the current role signal the backend of row `s` (pg_stat_get_activity) whose role is row
 * `u` (pg_roles), given `n.superuser` and `n.signal_backend` of the current role? The one
 * classification of Session.signallable, used by the snapshot and re-checked by every kill.
 */
export const SIGNALLABLE_SQL = `case when n.superuser then true
              when u.rolsuper or s.usesysid is null then false
              when n.signal_backend then true
              else pg_has_role(s.usesysid, 'USAGE') end`;

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
  /** Seconds since the backend started. */
  readonly backendSeconds: number | null;
  readonly waitEventType: string | null;
  readonly waitEvent: string | null;
  readonly query: string | null;
  /**
   * The server hides this backend's state, query and timestamps from pgwarden's role (no
   * pg_read_all_stats, not a role whose privileges it has): a backend of a role, in a database,
   * whose type the server does not say — a client backend as far as anyone can tell (logical
   * replication and other database-connected workers look the same). Never judged, never acted
   * on, always counted (pgwarden_sessions_hidden). The rule is the server's
   * HAS_PGSTAT_PERMISSIONS: https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ACTIVITY-VIEW
   */
  readonly hidden: boolean;
  /**
   * Whether pgwarden's role may signal this backend, decided as pg_signal_backend() decides
   * (src/backend/storage/ipc/signalfuncs.c): a superuser may signal anyone; a superuser's backend
   * (or one with no role) only a superuser; any other backend a role with the privileges of
   * pg_signal_backend or of the backend's role (inheritance counts, plain membership does not).
   * https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADMIN-SIGNAL
   */
  readonly signallable: boolean;
}

/** One role of pg_roles with what policies need to judge it. */
export interface RoleInfo {
  readonly role: string;
  readonly login: boolean;
  readonly superuser: boolean;
  readonly connLimit: number;
  /** Finite rolvaliduntil, or null for none, `infinity` or `-infinity`. */
  readonly validUntil: Date | null;
  /**
   * Seconds until validUntil (negative when past), by the server's clock; null when none
   * (`infinity` too); -Infinity for `-infinity` (password logins refused for good).
   */
  readonly validSeconds: number | null;
  /** Roles this one is a direct member of (16+: not those it holds with ADMIN only, neither INHERIT nor SET). */
  readonly memberOf: readonly string[];
  /** Client sessions open as this role now. */
  readonly sessions: number;
}

/** Everything one target showed at one instant. */
export interface Snapshot {
  readonly target: string;
  readonly takenAt: Date;
  readonly serverVersionNum: number;
  /** The server's clock when the snapshot was read, epoch µs: every age in it is measured from it. */
  readonly clockUs: number;
  /** pgwarden's role on the target and its rights, at the same instant. */
  readonly self: Identity;
  readonly sessions: readonly Session[];
  /** The server's connection slots, read with the sessions. */
  readonly slots: Slots;
  /** Lock waits, attached only when a policy needs them (policies/registry.ts needsLocks). */
  readonly locks?: LockSnapshot;
}

/**
 * A server's connection slots (PostgreSQL docs, "Connections and Authentication"): `usable` is
 * what ordinary roles may take — max_connections minus superuser_reserved_connections and, on
 * 16+, reserved_connections (kept for roles with pg_use_reserved_connections).
 */
export interface Slots {
  readonly maxConnections: number;
  readonly superuserReserved: number;
  /** 0 before PostgreSQL 16. */
  readonly reserved: number;
  readonly usable: number;
}

/**
 * The backends that take a connection slot: client backends, pgwarden's own included, and those
 * hidden from pgwarden's role (a role and a database, no type to read: they are clients too).
 */
export function connectionsUsed(sessions: readonly Session[]): number {
  let used = 0;
  for (const s of sessions) if (takesSlot(s)) used += 1;
  return used;
}

/** Whether a backend takes a connection slot: a client backend, or one hidden from pgwarden's role (connectionsUsed). */
export function takesSlot(session: Session): boolean {
  return session.backendType === 'client backend' || session.hidden;
}

/**
 * The roles of a snapshot: iterated (a RoleTable, or an array in tests), never indexed. A role
 * handed out by the iteration is a fresh object: keep it, it does not change.
 */
export interface RoleRows extends Iterable<RoleInfo> {
  readonly length: number;
}

export interface RoleSnapshot {
  readonly target: string;
  readonly takenAt: Date;
  /** The roles pgwarden is and never acts on, and whether it is a superuser (read with the roles). */
  readonly self: Pick<Identity, 'role' | 'currentRole' | 'bootstrapRole' | 'superuser'>;
  readonly roles: RoleRows;
}

/** Query text longer than this is cut in the snapshot (the server keeps at most track_activity_query_size). */
export const SNAPSHOT_QUERY_CHARS = 1024;

/*
 * Both snapshot queries are the hot path of every tick, measured by `npm run bench` against the
 * bare catalog fetch (README, Performance). Hence their shape:
 * - timestamps travel as exact epoch microseconds (int8 text): no timestamptz output on the server,
 *   no Date parsing in Node, and backend_start stays exact to the microsecond;
 * - the server's clock is read once (`now_us`, the same value on every row) and ages are the
 *   differences, computed in Node: the server's clock, without an interval and a numeric per row;
 * - rows come back as arrays of text (TargetDb.queryText) and are parsed here column by column;
 * - named statements, so each pooled connection parses and plans them once.
 */

/**
 * pg_stat_get_activity is the function under pg_stat_activity; joined here to pg_roles ourselves
 * (the view's own join to pg_authid only names the role) so that the name and rolsuper come from
 * one join instead of a second pass over every role (10,000 of them) for the superuser flag.
 */
export const SESSIONS_SQL = `
  select s.pid,
         u.rolname,
         u.rolsuper,
         d.datname,
         s.application_name,
         host(s.client_addr),
         s.client_port,
         s.state,
         s.backend_type,
         (extract(epoch from s.backend_start) * 1000000)::int8,
         (extract(epoch from s.xact_start) * 1000000)::int8,
         (extract(epoch from s.query_start) * 1000000)::int8,
         (extract(epoch from s.state_change) * 1000000)::int8,
         s.wait_event_type,
         s.wait_event,
         left(s.query, $1),
         n.now_us,
         n.server_version_num,
         ${SIGNALLABLE_SQL},
         -- who pgwarden is, on its own backend's row only (always there): NULLs on every other
         -- row rather than the same six values repeated for 1,000 sessions
         case when s.pid = n.own_pid then n.session_role end,
         case when s.pid = n.own_pid then n.current_role end,
         case when s.pid = n.own_pid then n.bootstrap_role end,
         case when s.pid = n.own_pid then n.superuser end,
         case when s.pid = n.own_pid then n.read_all_stats end,
         case when s.pid = n.own_pid then n.signal_backend end,
         case when s.pid = n.own_pid then n.max_connections end,
         case when s.pid = n.own_pid then n.superuser_reserved end,
         case when s.pid = n.own_pid then n.reserved end
  from pg_stat_get_activity(null) s
  left join pg_database d on d.oid = s.datid
  left join pg_roles u on u.oid = s.usesysid
  cross join (select (extract(epoch from clock_timestamp()) * 1000000)::int8 as now_us,
                     current_setting('server_version_num')::int as server_version_num,
                     pg_backend_pid() as own_pid,
                     session_user::text as session_role,
                     current_user::text as current_role,
                     (select rolname::text from pg_roles where oid = 10) as bootstrap_role,
                     (select rolsuper from pg_roles where rolname = current_user) as superuser,
                     pg_has_role('pg_read_all_stats', 'USAGE') as read_all_stats,
                     pg_has_role('pg_signal_backend', 'USAGE') as signal_backend,
                     current_setting('max_connections')::int as max_connections,
                     current_setting('superuser_reserved_connections')::int as superuser_reserved,
                     coalesce(current_setting('reserved_connections', true)::int, 0) as reserved) n`;

/** Epoch microseconds (int8 text, exact below 2^53, i.e. until the year 2255) as a number. */
function micros(text: string | null): number | null {
  return text === null ? null : Number(text);
}

/** A Date of epoch microseconds, to the millisecond (rounded down, as pg's own parser does). */
function dateOf(us: number | null): Date | null {
  return us === null ? null : new Date(Math.floor(us / 1000));
}

/** Seconds from `us` to `nowUs`, both epoch microseconds by the server's clock. */
function secondsSince(us: number | null, nowUs: number): number | null {
  return us === null ? null : (nowUs - us) / 1e6;
}

/** One row of SESSIONS_SQL (array of text) as a Session. */
function toSession(row: readonly (string | null)[]): Session {
  const nowUs = Number(row[16]);
  const backendStart = micros(row[9] ?? null);
  const xactStart = micros(row[10] ?? null);
  const queryStart = micros(row[11] ?? null);
  const stateChange = micros(row[12] ?? null);
  const clientPort = row[6] ?? null;
  return {
    pid: Number(row[0]),
    role: row[1] ?? null,
    superuser: row[2] === 't',
    database: row[3] ?? null,
    application: row[4] ?? '',
    clientAddr: row[5] ?? null,
    clientPort: clientPort === null || clientPort === '-1' ? null : Number(clientPort),
    state: row[7] ?? null,
    backendType: row[8] ?? '',
    backendStart: dateOf(backendStart),
    backendStartUs: row[9] ?? null,
    xactStart: dateOf(xactStart),
    queryStart: dateOf(queryStart),
    stateChange: dateOf(stateChange),
    stateSeconds: secondsSince(stateChange, nowUs),
    xactSeconds: secondsSince(xactStart, nowUs),
    querySeconds: secondsSince(queryStart, nowUs),
    backendSeconds: secondsSince(backendStart, nowUs),
    waitEventType: row[13] ?? null,
    waitEvent: row[14] ?? null,
    query: row[15] ?? null,
    // The server says nothing of a hidden backend but its pid, role, database and application.
    hidden: row[8] === null && row[3] !== null && row[1] !== null,
    signallable: row[18] === 't',
  };
}

/** Who pgwarden is on a target and what its role may see and do, read with every session snapshot. */
export interface Identity {
  /** The role pgwarden logged in as (session_user). */
  readonly role: string;
  /** The role its privileges are checked as (current_user; differs only after SET ROLE). */
  readonly currentRole: string;
  /** The bootstrap superuser (oid 10): never a candidate of any policy or command. */
  readonly bootstrapRole: string;
  readonly superuser: boolean;
  /** Has the privileges of pg_read_all_stats: sees every backend's state (superusers too). */
  readonly readAllStats: boolean;
  /** Has the privileges of pg_signal_backend: may signal other roles' non-superuser backends. */
  readonly signalBackend: boolean;
}

function identityOf(row: readonly (string | null)[] | undefined): Identity {
  return {
    role: row?.[19] ?? '',
    currentRole: row?.[20] ?? '',
    bootstrapRole: row?.[21] ?? '',
    superuser: row?.[22] === 't',
    readAllStats: row?.[23] === 't',
    signalBackend: row?.[24] === 't',
  };
}

function slotsOf(row: readonly (string | null)[] | undefined): Slots {
  const maxConnections = Number(row?.[25] ?? 0);
  const superuserReserved = Number(row?.[26] ?? 0);
  const reserved = Number(row?.[27] ?? 0);
  return { maxConnections, superuserReserved, reserved, usable: Math.max(0, maxConnections - superuserReserved - reserved) };
}

/** One round trip: every backend of the server, by pid, with ages by the server's clock. */
export async function fetchSessions(db: TargetDb): Promise<Snapshot> {
  const rows = await db.queryText({ name: 'pgwarden_sessions', text: SESSIONS_SQL, values: [SNAPSHOT_QUERY_CHARS] });
  const sessions = rows.map(toSession);
  const own = rows.find((row) => row[19] !== null);
  // Ordered by pid for stable output; a sort of numbers here is cheaper than the server's sort.
  sessions.sort((a, b) => a.pid - b.pid);
  return {
    target: db.name,
    takenAt: new Date(),
    // Our own backend is always in the view, so the version rides along with no extra round trip.
    serverVersionNum: Number(rows[0]?.[17] ?? 0),
    clockUs: Number(rows[0]?.[16] ?? Date.now() * 1000),
    self: identityOf(own),
    sessions,
    slots: slotsOf(own),
  };
}

/**
 * The roles in a single row of columns, not one row per role: at 100,000 roles a row each made pg
 * parse 100,000 messages into 100,000 arrays of 11 strings every tick, which held the process at
 * 250-350 MB of RSS (issue 19). Names come as one JSON array and flags as one digit per role, in
 * the same order (one Agg node advances every aggregate per input row); rolvaliduntil as its
 * binary form (timestamptz_send: int8 µs since 2000-01-01, ±infinity as the int8 bounds), 8
 * bytes per role, exact and cheaper for the server than any number formatted as text; the
 * columns most roles leave at their default (a connection limit, memberships) as [name, value]
 * pairs of the roles that have one.
 *
 * Those columns change only when a role does, and come with their SHA-256 (`digest`): given the
 * digest of the columns it already holds ($1), the query sends them only when theirs differs —
 * 3.4 MB every tick at 100,000 roles, decoded every tick, became 100 bytes, for about 5 ms more
 * of the server's time (55 ms against 50; each column hashed on its own: a concat or a
 * convert_to of the megabytes cost 40 ms more). SHA-256, not md5 (refused by servers in FIPS
 * mode) nor hashtext (anyone who may create roles could make a change that keeps a 64-bit hash).
 * What changes every tick, the sessions per role and the clock, is always sent.
 *
 * Not ordered: sorting 10,000 roles by name costs the server more than anything else here, and
 * only what is shown needs an order (violations are sorted by the rules, `pgwarden roles` sorts
 * its rows).
 */
export const ROLES_SQL = `
  with c as (
    select json_agg(r.rolname)::text as names,
           string_agg(case when r.rolcanlogin then case when r.rolsuper then '3' else '1' end
                           when r.rolsuper then '2' else '0' end, '') as flags,
           -- no expiry is as good as infinity (RoleInfo.validUntil null)
           -- hex whatever the session's bytea_output (escape, set for a legacy application, would
           -- otherwise come as text no hex decoder reads)
           encode(string_agg(timestamptz_send(coalesce(r.rolvaliduntil, 'infinity')), ''::bytea), 'hex') as valid_until,
           (json_agg(json_build_array(r.rolname, r.rolconnlimit)) filter (where r.rolconnlimit <> -1))::text as conn_limits,
           (json_agg(json_build_array(r.rolname, m.member_of)) filter (where m.member_of is not null))::text as member_of
    from pg_roles r
    left join (
      -- from PostgreSQL 16 a membership has one row per grantor: distinct folds them. A grant with
      -- neither INHERIT nor SET (what 16 gives a CREATEROLE role on each role it creates) is ADMIN
      -- only, no membership in the sense of memberOf: left out. Those options exist from 16 on,
      -- hence to_jsonb, so that one text serves 14–18 (pg_auth_members has a row per grant: few).
      select am.member, array_agg(distinct g.rolname::text order by g.rolname::text) as member_of
      from pg_auth_members am join pg_roles g on g.oid = am.roleid
      where coalesce((to_jsonb(am) ->> 'inherit_option')::boolean, true)
         or coalesce((to_jsonb(am) ->> 'set_option')::boolean, true)
      group by am.member
    ) m on m.member = r.oid
  ), d as materialized (
    -- a digest per column, then of the five (32 bytes each: no two columns' texts can run together).
    -- Materialized: inlined, the planner would copy the digest's expression into each of its six
    -- uses below, and hash the megabytes six times.
    select c.*, encode(sha256(sha256(coalesce(textsend(c.names), '')) || sha256(coalesce(textsend(c.flags), ''))
                              || sha256(coalesce(textsend(c.valid_until), '')) || sha256(coalesce(textsend(c.conn_limits), ''))
                              || sha256(coalesce(textsend(c.member_of), ''))), 'hex') as digest
    from c
  )
  select case when d.digest is distinct from $1::text then d.names end,
         case when d.digest is distinct from $1::text then d.flags end,
         case when d.digest is distinct from $1::text then d.valid_until end,
         case when d.digest is distinct from $1::text then d.conn_limits end,
         case when d.digest is distinct from $1::text then d.member_of end,
         d.digest,
         -- the function under pg_stat_activity: the view would join every role (100,000) only to
         -- name them, where a count per role id, then the names of those few, is all that is
         -- needed here. A backend hidden from pgwarden's role (no pg_read_all_stats) has no
         -- backend_type: one with a role and a database counts, as Session.hidden does — "no
         -- sessions" must never mean "cannot see them".
         (select json_agg(json_build_array(u.rolname, s.sessions))
          from (select usesysid, count(*) as sessions
                from pg_stat_get_activity(null)
                where backend_type = 'client backend' or (backend_type is null and datid is not null and usesysid is not null)
                group by usesysid) s
          join pg_roles u on u.oid = s.usesysid),
         encode(timestamptz_send(clock_timestamp()), 'hex'),
         session_user::text,
         current_user::text,
         (select rolname::text from pg_roles where oid = 10),
         (select rolsuper from pg_roles where rolname = current_user)
  from d`;

const NO_ROLES: readonly string[] = Object.freeze([]);

/** A JSON array column of the role query (empty when no role had a value). */
function jsonColumn<T>(text: string | null | undefined): T[] {
  return text === null || text === undefined ? [] : (JSON.parse(text) as T[]);
}

/** A [name, value] pairs column of the role query, by name. */
function pairsColumn<T>(text: string | null | undefined): Map<string, T> {
  return new Map(jsonColumn<[string, T]>(text));
}

/** PostgreSQL's epoch (2000-01-01) in Unix epoch µs: timestamptz_send counts from it. */
const POSTGRES_EPOCH_US = 946_684_800_000_000;
/** JavaScript's last Date, in epoch µs: a later rolvaliduntil (PostgreSQL goes to 294276) is capped there. */
const LAST_DATE_US = 8.64e18;

/**
 * The epoch µs of timestamptz_send's values in `hex` (encode(…, 'hex'), 8 bytes each):
 * Infinity and -Infinity for `infinity` and `-infinity`.
 */
function timestampsOf(hex: string | null | undefined): Float64Array {
  const bytes = Buffer.from(hex ?? '', 'hex');
  const out = new Float64Array(bytes.length >> 3);
  for (let i = 0; i < out.length; i++) {
    const high = bytes.readInt32BE(i * 8);
    const low = bytes.readUInt32BE(i * 8 + 4);
    if (high === 0x7fffffff && low === 0xffffffff) out[i] = Infinity;
    else if (high === -0x80000000 && low === 0) out[i] = -Infinity;
    else out[i] = Math.min(high * 2 ** 32 + low + POSTGRES_EPOCH_US, LAST_DATE_US);
  }
  return out;
}

/**
 * A role of a RoleTable: its Date is made only when asked for (most roles are judged by
 * validSeconds alone, and the table is walked several times a tick).
 */
class TableRole implements RoleInfo {
  readonly login: boolean;
  readonly superuser: boolean;

  constructor(
    readonly role: string,
    flag: number,
    readonly connLimit: number,
    /** Epoch µs; ±Infinity for ±infinity and for none. */
    validUntilUs: number,
    readonly validSeconds: number | null,
    readonly memberOf: readonly string[],
    readonly sessions: number,
  ) {
    this.login = (flag & 1) === 1;
    this.superuser = (flag & 2) === 2;
    this.#validUntilUs = validUntilUs;
  }

  readonly #validUntilUs: number;

  get validUntil(): Date | null {
    return Number.isFinite(this.#validUntilUs) ? dateOf(this.#validUntilUs) : null;
  }
}

/**
 * The columns of the role snapshot that change only when a role does (names, flags, expiries,
 * connection limits, memberships), decoded, with the digest the server gave them (ROLES_SQL).
 * Immutable: the daemon keeps a target's last ones and shares them between ticks; 2.7 MB at
 * 100,000 roles, 0.27 MB at 10,000.
 *
 * The names are kept as one string (joined by NUL, which no role name holds) and their offsets,
 * not as a string each: kept for many ticks, 10,000 small strings were promoted among the first
 * tick's short-lived objects and pinned half-empty pages of the old generation (old space 27 MB
 * for 12 MB used, 8-14 MB more RSS than reading every role every tick). A name is cut out as a
 * walk asks for it.
 */
export class RoleColumns {
  readonly digest: string;
  /** Roles. */
  readonly length: number;
  /** The names, each followed by NUL. */
  readonly #names: string;
  /** Where each name starts in #names; one more entry, past the end. */
  readonly #starts: Int32Array;
  /** One digit per role: login + 2 × superuser. */
  readonly flags: string;
  /** Epoch µs; ±Infinity for ±infinity and for none. */
  readonly validUntilUs: Float64Array;
  readonly connLimits: ReadonlyMap<string, number>;
  readonly memberOf: ReadonlyMap<string, string[]>;

  /**
   * `row`: the role query's row as text (ROLES_SQL's columns in order), sent whole.
   * @throws Error when the columns do not line up (every role would be judged wrong, silently).
   */
  constructor(row: readonly (string | null)[] | undefined) {
    this.digest = row?.[5] ?? '';
    const names = jsonColumn<string>(row?.[0]);
    this.length = names.length;
    this.#starts = new Int32Array(names.length + 1);
    let at = 0;
    for (let i = 0; i < names.length; i++) {
      this.#starts[i] = at;
      at += (names[i] as string).length + 1;
    }
    this.#starts[names.length] = at;
    this.#names = names.length === 0 ? '' : `${names.join('\0')}\0`;
    this.flags = row?.[1] ?? '';
    this.validUntilUs = timestampsOf(row?.[2]);
    this.connLimits = pairsColumn<number>(row?.[3]);
    this.memberOf = pairsColumn<string[]>(row?.[4]);
    if (this.flags.length !== this.length || this.validUntilUs.length !== this.length) {
      throw new Error(`role snapshot: ${this.length} names, ${this.flags.length} flags and ${this.validUntilUs.length} expiries do not line up`);
    }
  }

  /** The i-th role's name (0 ≤ i < length). */
  name(i: number): string {
    return this.#names.slice(this.#starts[i], (this.#starts[i + 1] as number) - 1);
  }
}

/**
 * The role snapshot in columns, as the role query sends them: names, flags and expiries by
 * position, the rest by name. A RoleInfo object is made only as the iteration reaches it and
 * dies young, where 100,000 objects and Dates made up front outlived the young generation every
 * tick and grew the old one (issue 19).
 */
export class RoleTable implements RoleRows {
  readonly columns: RoleColumns;
  readonly #sessions: ReadonlyMap<string, number>;
  readonly #nowUs: number;

  /**
   * @param sessions client sessions by role name (roles with none left out)
   * @param nowUs the server's clock when the roles were read, epoch µs
   */
  constructor(columns: RoleColumns, sessions: ReadonlyMap<string, number>, nowUs: number) {
    this.columns = columns;
    this.#sessions = sessions;
    this.#nowUs = nowUs;
  }

  get length(): number {
    return this.columns.length;
  }

  /** The server's clock when the roles were read, epoch µs. */
  get nowUs(): number {
    return this.#nowUs;
  }

  /** The i-th role (0 ≤ i < length), as a new object. */
  at(i: number): RoleInfo {
    const { flags, validUntilUs, connLimits, memberOf } = this.columns;
    const name = this.columns.name(i);
    const us = validUntilUs[i] as number;
    return new TableRole(
      name,
      flags.charCodeAt(i) - 48,
      connLimits.get(name) ?? -1,
      us,
      // -infinity refuses password logins for good; infinity (or none) never expires
      Number.isFinite(us) ? (us - this.#nowUs) / 1e6 : us === -Infinity ? -Infinity : null,
      memberOf.get(name) ?? NO_ROLES,
      this.#sessions.get(name) ?? 0,
    );
  }

  [Symbol.iterator](): Iterator<RoleInfo> {
    let i = 0;
    const length = this.length;
    return {
      next: (): IteratorResult<RoleInfo> => (i < length ? { done: false, value: this.at(i++) } : { done: true, value: undefined }),
    };
  }
}

/*
 * Walks that need one or two columns, not whole roles: on a RoleTable they read the columns and
 * make no RoleInfo (a tick walked 100,000 roles six times, 600,000 objects, issue 19); any other
 * RoleRows (tests' arrays) is walked.
 */

/** Login roles of `roles` (the role circuit breaker's denominator). */
export function countLogins(roles: RoleRows): number {
  let count = 0;
  if (roles instanceof RoleTable) {
    const { flags } = roles.columns;
    // flag digit: login + 2 × superuser, so '1' and '3' log in
    for (let i = 0; i < flags.length; i++) if ((flags.charCodeAt(i) - 48) & 1) count += 1;
    return count;
  }
  for (const r of roles) if (r.login) count += 1;
  return count;
}

/**
 * Calls `visit` with each login role that has a finite expiry and its seconds left (negative when
 * past), by the server's clock: what the expiry gauges are made of.
 */
export function eachLoginExpiry(roles: RoleRows, visit: (role: string, validSeconds: number) => void): void {
  if (roles instanceof RoleTable) {
    const { columns } = roles;
    const { flags, validUntilUs } = columns;
    const nowUs = roles.nowUs;
    for (let i = 0; i < columns.length; i++) {
      const us = validUntilUs[i] as number;
      if ((flags.charCodeAt(i) - 48) & 1 && Number.isFinite(us)) visit(columns.name(i), (us - nowUs) / 1e6);
    }
    return;
  }
  for (const r of roles) if (r.login && r.validSeconds !== null && Number.isFinite(r.validSeconds)) visit(r.role, r.validSeconds);
}

/** [role, memberOf] of the roles that are members of any: a RoleTable's column holds only those. */
function memberships(roles: RoleRows): Iterable<readonly [string, readonly string[]]> {
  if (roles instanceof RoleTable) return roles.columns.memberOf;
  return Array.from(roles, (r) => [r.role, r.memberOf] as const);
}

/** A role snapshot read by fetchRoles, with the columns to give the next read of the same target. */
export interface FetchedRoles extends RoleSnapshot {
  readonly roles: RoleTable;
}

/**
 * One round trip: every role with expiry, direct memberships and live session count. Given the
 * `previous` columns of the same target, the server sends them again only if they changed
 * (ROLES_SQL): the result then shares them.
 * @throws Error when the server sent no columns and `previous` is not what it has (cannot happen
 * with ROLES_SQL: a guard against reusing the wrong ones), or when they do not line up.
 */
export async function fetchRoles(db: TargetDb, previous?: RoleColumns): Promise<FetchedRoles> {
  const [row] = await db.queryText({ name: 'pgwarden_roles', text: ROLES_SQL, values: [previous?.digest ?? null] });
  const digest = row?.[5] ?? null;
  let columns: RoleColumns;
  if (row?.[0] === null && row[1] === null) {
    if (previous === undefined || digest !== previous.digest) throw new Error('role snapshot: the server sent no roles');
    columns = previous;
  } else {
    columns = new RoleColumns(row);
  }
  const self = { role: row?.[8] ?? '', currentRole: row?.[9] ?? '', bootstrapRole: row?.[10] ?? '', superuser: row?.[11] === 't' };
  const nowUs = timestampsOf(row?.[7])[0] ?? Date.now() * 1000;
  return { target: db.name, takenAt: new Date(), self, roles: new RoleTable(columns, pairsColumn<number>(row?.[6]), nowUs) };
}

/**
 * The roles that belong to `group`, directly or through other roles: one walk down from the
 * group, instead of every role's own closure (10,000 roles, one marker).
 */
export function membersOf(roles: RoleRows, group: string): Set<string> {
  const directMembers = new Map<string, string[]>();
  for (const [role, memberOf] of memberships(roles)) {
    for (const g of memberOf) {
      const list = directMembers.get(g);
      if (list) list.push(role);
      else directMembers.set(g, [role]);
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

/** The client backends of a snapshot hidden from pgwarden's role (Session.hidden). */
export function countHidden(sessions: readonly Session[]): number {
  let hidden = 0;
  for (const s of sessions) if (s.hidden) hidden += 1;
  return hidden;
}

/**
 * The one warning every command and run gives when the server hides backends from pgwarden
 * (DESIGN.md: "never counted as 'no session'"), naming the missing grant; null when none is hidden.
 */
export function hiddenSessionsWarning(snapshot: Pick<Snapshot, 'target' | 'sessions' | 'self'>): string | null {
  const hidden = countHidden(snapshot.sessions);
  if (hidden === 0) return null;
  const who = quoteIdent(snapshot.self.currentRole);
  return (
    `target ${snapshot.target}: ${hidden} client backend(s) of other roles are hidden from pgwarden's role ${who}: ` +
    `without pg_read_all_stats it cannot read their state, so it neither shows, judges nor ends them ` +
    `(fix: GRANT pg_read_all_stats TO ${who}; see pgwarden doctor)`
  );
}
