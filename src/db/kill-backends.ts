/**
 * The kill statements. All kills of one policy run go in one statement that re-checks, for each
 * backend, the condition the policy saw — same pid, same backend_start to the microsecond, still
 * a client backend, still in the state, still past the threshold by the server's clock — and
 * signals only the backends that still match. Anything else is `gone` and left alone.
 * pg_stat_activity is read afresh because each autocommit statement is its own transaction.
 */
import { quoteLiteral } from './quote.js';
import { SIGNALLABLE_SQL } from './snapshot.js';
import type { AgeColumn, ConnectionGroup, Recheck, SessionAction } from '../policies/types.js';

/** Column names are never user input: they come from this whitelist. */
const AGE_COLUMNS: Readonly<Record<AgeColumn, string>> = {
  state_change: 'state_change',
  query_start: 'query_start',
  xact_start: 'xact_start',
  backend_start: 'backend_start',
};

const SIGNAL: Readonly<Record<SessionAction, string>> = {
  terminate: 'pg_terminate_backend',
  cancel: 'pg_cancel_backend',
};

/**
 * Whether the connected role may signal the backend at all — the snapshot's classification
 * (SIGNALLABLE_SQL: as the server decides, by the privileges of roles, not bare membership). A
 * backend it may not signal is reported, not attempted: a refused signal would abort the whole
 * batch after some signals had already gone out (signals are not transactional).
 */
const SIGNALLER = `(select (select rolsuper from pg_roles where rolname = current_user) as superuser,
                     pg_has_role('pg_signal_backend', 'USAGE') as signal_backend) n`;

/** Still blocking someone: a backend waiting on a lock names it among its blockers. */
const STILL_BLOCKING = `exists (select 1 from pg_stat_activity w
                  where w.wait_event_type = 'Lock' and s.pid = any(pg_blocking_pids(w.pid)))`;

/** The group a backend (alias `a`) is counted in; never user input: from this whitelist. */
function groupKey(per: ConnectionGroup, a: string): string {
  switch (per) {
    case 'server':
      return `'server'`;
    case 'role':
      return `${a}.usesysid::text`;
    case 'database':
      return `${a}.datid::text`;
    case 'application':
      return `${a}.application_name`;
    case 'role_database':
      return `${a}.usesysid::text || '/' || ${a}.datid::text`;
  }
}

/** A backend (alias `a`) that takes a connection slot: a client, or one whose type is hidden from us. */
function takesSlot(a: string): string {
  return `(${a}.backend_type = 'client backend' or (${a}.backend_type is null and ${a}.datid is not null and ${a}.usesysid is not null))`;
}

/**
 * The requested backends ($1 pids, $2 backend_start as epoch µs text, $3 actions) joined to the
 * ones still matching their re-check ($4 states, $5 seconds) as `s`, the signaller as `n`, the
 * role as `u`: what every batch kill reads.
 */
function stillMatching(recheck: Recheck): string {
  const since = AGE_COLUMNS[recheck.since];
  return `unnest($1::int[], $2::text[], $3::text[]) as c(pid, backend_start_us, action)
  cross join ${SIGNALLER}
  left join pg_stat_activity s
    on s.pid = c.pid
   and s.backend_type = 'client backend'
   and (extract(epoch from s.backend_start) * 1000000)::bigint = c.backend_start_us::bigint
   and ($4::text[] is null or s.state = any($4::text[]))
   and s.${since} <= clock_timestamp() - make_interval(secs => $5::float8)${recheck.stillBlocking ? `
   and ${STILL_BLOCKING}` : ''}
  left join pg_roles u on u.oid = s.usesysid`;
}

/** One statement for many backends: $1 pids, $2 backend_start as epoch µs (text), $3 actions, $4 states, $5 seconds. */
export function batchKillSql(recheck: Recheck): string {
  if (recheck.overLimit) return batchKillOverLimitSql(recheck, recheck.overLimit);
  return `
  select c.pid,
         case when s.pid is null then null
              when not (${SIGNALLABLE_SQL}) then 'denied'
              when c.action = 'cancel' then pg_cancel_backend(s.pid)::text
              else pg_terminate_backend(s.pid)::text end as signalled
  from ${stillMatching(recheck)}`;
}

/**
 * The batch kill of a limit policy: the same re-checks, then per group the backends still
 * matching are ranked longest idle first and only as many are signalled as the group — counted
 * afresh in the same statement — is over `limit`; the others come back `over` (no longer needed).
 * $6 the limit.
 */
function batchKillOverLimitSql(recheck: Recheck, over: NonNullable<Recheck['overLimit']>): string {
  return `
  with counts as (
    select ${groupKey(over.per, 'a')} as grp, count(*) as n
    from pg_stat_activity a
    where ${takesSlot('a')}
    group by 1),
  k as (
    select c.pid, c.action, s.pid as spid, ${groupKey(over.per, 's')} as grp,
           row_number() over (partition by ${groupKey(over.per, 's')}, s.pid is null order by s.state_change, s.pid) as rank,
           ${SIGNALLABLE_SQL} as allowed
    from ${stillMatching(recheck)})
  select k.pid,
         case when k.spid is null then null
              when k.rank > coalesce(counts.n, 0) - $6::int then 'over'
              when not k.allowed then 'denied'
              when k.action = 'cancel' then pg_cancel_backend(k.spid)::text
              -- waits (up to 2 s) until it is gone: another limit policy of the same tick then
              -- counts the slots it freed, never a backend that is only on its way out
              else pg_terminate_backend(k.spid, 2000)::text end as signalled
  from k left join counts on counts.grp = k.grp`;
}

/** The same kill for one backend, with every value inlined: what `plan` prints and a DBA can run. */
export function singleKillSql(action: SessionAction, pid: number, backendStartUs: string | null, recheck: Recheck): string {
  const start = backendStartUs ?? '0';
  if (!/^\d+$/.test(start)) throw new Error(`backend_start must be epoch microseconds, got ${start}`);
  return (
    `select ${SIGNAL[action]}(pid) from pg_stat_activity\n` +
    `where pid = ${Math.trunc(pid)} and backend_type = 'client backend'\n` +
    `  and (extract(epoch from backend_start) * 1000000)::bigint = ${start}${recheckTail(recheck)}`
  );
}

/** The part of a printed kill that depends only on the re-check: built once per re-check (a run may print hundreds). */
const tails = new WeakMap<Recheck, string>();
function recheckTail(recheck: Recheck): string {
  let tail = tails.get(recheck);
  if (tail === undefined) {
    const since = AGE_COLUMNS[recheck.since];
    const states = recheck.states ? `\n  and state in (${recheck.states.map(quoteLiteral).join(', ')})` : '';
    tail =
      `${states}\n  and ${since} <= clock_timestamp() - interval '${Number(recheck.thresholdSeconds)} seconds'` +
      (recheck.stillBlocking ? `\n  and ${STILL_BLOCKING.replace('s.pid', 'pg_stat_activity.pid')}` : '') +
      (recheck.overLimit
        ? `\n  and (select count(*) from pg_stat_activity a\n       where ${takesSlot('a')}\n         and ${groupKey(recheck.overLimit.per, 'a')} = ${groupKey(recheck.overLimit.per, 'pg_stat_activity')}) > ${Math.trunc(recheck.overLimit.limit)}`
        : '');
    tails.set(recheck, tail);
  }
  return tail;
}

/** The kill of every session of one backend identity, for a role: re-checked by pid and backend_start. */
export const TERMINATE_RECHECK = { states: null, since: 'backend_start', thresholdSeconds: 0 } as const;
