/**
 * Whether pgwarden's role may act as the grantors of a role's privileges. A REVOKE removes only
 * the ACL items its role granted, so `revoke` makes each one as its grantor: object privileges
 * in a transaction under `SET LOCAL ROLE grantor`, default privileges with `ALTER DEFAULT
 * PRIVILEGES FOR ROLE grantor`. The server checks them differently (measured on 15 and 16):
 * SET ROLE needs membership before 16 and the SET option from 16; FOR ROLE needs membership
 * before 16 and the grantor's privileges (INHERIT) from 16.
 * https://www.postgresql.org/docs/current/sql-set-role.html
 * https://www.postgresql.org/docs/current/sql-alterdefaultprivileges.html
 */
import type { Queryable } from './pool.js';
import { serverFacts } from './server.js';

/** What pgwarden's role may do as one grantor. */
export interface GrantorRight {
  /** May `SET ROLE` to it (object privileges are revoked that way). */
  readonly setRole: boolean;
  /** May `ALTER DEFAULT PRIVILEGES FOR ROLE` it (default privileges are revoked that way). */
  readonly forRole: boolean;
}

export interface GrantorRights {
  /** pgwarden's current role. */
  readonly me: string;
  /** A superuser may act as anyone. */
  readonly superuser: boolean;
  /** Per grantor asked that exists (its own role included: always allowed). */
  readonly grantors: ReadonlyMap<string, GrantorRight>;
}

/** pgwarden's rights over each of `grantors` (names); one statement. */
export async function fetchGrantorRights(db: Queryable, grantors: readonly string[]): Promise<GrantorRights> {
  const version = (await serverFacts(db)).versionNum;
  // 'SET' is a privilege pg_has_role knows from 16 on only: the mode is chosen here and bound.
  const [setMode, forRoleMode] = version >= 160000 ? ['SET', 'USAGE'] : ['MEMBER', 'MEMBER'];
  const { rows } = await db.query<{ me: string; superuser: boolean; grantors: { name: string; set_role: boolean; for_role: boolean }[] | null }>(
    `select current_user::text as me,
            coalesce((select rolsuper from pg_roles where rolname = current_user), false) as superuser,
            (select json_agg(json_build_object(
                      'name', g.rolname,
                      'set_role', g.rolname = current_user or pg_has_role(g.oid, $2),
                      'for_role', g.rolname = current_user or pg_has_role(g.oid, $3)))
             from pg_roles g where g.rolname = any($1::text[])) as grantors`,
    [grantors, setMode, forRoleMode],
  );
  const r = rows[0];
  return {
    me: r?.me ?? '',
    superuser: r?.superuser === true,
    grantors: new Map((r?.grantors ?? []).map((g) => [g.name, { setRole: g.set_role, forRole: g.for_role }])),
  };
}
