/**
 * What a role was granted, and by whom: the ACL entries naming it as grantee in every database
 * pg_shdepend says holds some (deptype `a`), the shared ones (databases, parameters) and its
 * memberships. Read for `owned --privileges` and before offboarding, which must know who granted
 * what: a REVOKE (and DROP OWNED) removes only what its role, or a role whose privileges it has,
 * granted.
 */
import type { DatabaseFootprint } from './footprint.js';
import { fetchLocalGrants, fetchSharedGrants, type Grant } from './grants.js';
import { visitFootprint, type UnvisitedDatabase } from './owned.js';
import type { TargetDb } from './pool.js';

/** One grant to the role: on `object` (as GRANT spells it) in `database` (null: shared), by `grantor`. */
export interface GrantTo {
  readonly database: string | null;
  readonly object: string;
  readonly privileges: readonly string[];
  readonly grantor: string;
  readonly grantable: boolean;
  /** The grant itself, for the REVOKE and the GRANT that restores it. */
  readonly grant: Grant;
}

/** Every grant to `role` (by name), entering only the databases whose ACLs name it. */
export async function fetchGrantsTo(
  db: TargetDb,
  role: string,
  footprint: readonly DatabaseFootprint[],
): Promise<{ grants: GrantTo[]; unvisited: UnvisitedDatabase[] }> {
  const all: Grant[] = [...(await fetchSharedGrants(db, role))];
  const visit = await visitFootprint(db, footprint, (f) => f.acl, (client, database) => fetchLocalGrants(client, database, role));
  for (const { value } of visit.results) all.push(...value);
  const unvisited = visit.unvisited;
  const grants = all
    .filter((g) => g.grantee === role)
    .map((g) => ({ database: g.database, object: g.membership ? `ROLE ${g.privileges.join(', ')}` : g.object, privileges: g.membership ? ['MEMBER'] : g.privileges, grantor: g.grantor, grantable: g.grantable, grant: g }));
  return { grants, unvisited };
}
