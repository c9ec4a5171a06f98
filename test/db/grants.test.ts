/** Grants read from the ACLs: REVOKE removes exactly them, and the restore SQL brings back exactly them. */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { fetchLocalGrants, fetchSharedGrants, restoreSql, revokeSql, type Grant } from '../../src/db/grants.js';
import { quoteIdent } from '../../src/db/quote.js';
import { urlFor, useFixture } from '../support/fixture.js';

const fixture = useFixture('grants');

function key(g: Grant): string {
  return JSON.stringify([g.database, g.object, g.privileges, g.grantee, g.grantor, g.grantable, g.defaults ?? null, g.membership ?? null]);
}

describe('grants', () => {
  it('round-trips every kind of grant: revoke them all, then the restore SQL brings back the same set', async () => {
    const f = fixture();
    const role = await f.createRole(f.name(`Gr"antee Ü`));
    const owner = await f.createRole(f.name('owner'));
    const other = await f.createRole(f.name('other'));
    const group = await f.createRole(f.name('group'), 'nologin');
    const database = await f.createDatabase(f.name('db'), owner);
    const [r, o, x, g] = [role, owner, other, group].map(quoteIdent);
    await f.sql(`grant connect, temporary on database ${quoteIdent(database)} to ${r}`);
    await f.sql(`grant ${g} to ${r} with admin option`);
    const { rows: version } = await f.sql<{ v: string }>("select current_setting('server_version_num') as v");
    const serverVersionNum = Number(version[0]!.v);
    if (serverVersionNum >= 150000) await f.sql(`grant set on parameter work_mem to ${r}`);

    const client = new pg.Client({ connectionString: urlFor(database) });
    await client.connect();
    try {
      await client.query(`
        set role ${o};
        create schema s;
        create table s.t (a int, b int);
        create sequence s.q;
        create view s.v as select 1 as x;
        create function s.f(int) returns int language sql as 'select 1';
        create type s.e as enum ('x');
        grant usage on schema s to ${r} with grant option;
        grant select, insert on s.t to ${r} with grant option;
        grant update (b) on s.t to ${r};
        grant usage on sequence s.q to ${r};
        grant select on s.v to ${r};
        grant execute on function s.f(int) to ${r};
        grant usage on type s.e to ${r};
        alter default privileges in schema s grant select on tables to ${r};
        reset role;
        set role ${r};
        grant select on s.t to ${x};
        reset role;`);
      const before = [...(await fetchLocalGrants(client, database, role)), ...(await fetchSharedGrants(client, role))];
      const objects = before.map((b) => `${b.grantee === role ? 'held' : 'given'} ${b.object} ${b.privileges.join(',')}`);
      expect(objects).toEqual(
        expect.arrayContaining([
          'held SCHEMA s USAGE',
          'held TABLE s.t INSERT,SELECT',
          'held TABLE s.t UPDATE (b)',
          'held SEQUENCE s.q USAGE',
          'held TABLE s.v SELECT',
          'held FUNCTION s.f(integer) EXECUTE',
          'held TYPE s.e USAGE',
          'held TABLES SELECT',
          'given TABLE s.t SELECT',
          `held DATABASE ${database} CONNECT,TEMPORARY`, // quote_ident: only quoted when it must be
          `held ROLE ${g}`,
          ...(serverVersionNum >= 150000 ? ['held PARAMETER work_mem SET'] : []),
        ]),
      );
      const given = before.find((b) => b.grantee === other)!;
      expect(given.grantor).toBe(role);
      const membership = before.find((b) => b.membership)!;
      expect(membership.membership?.admin).toBe(true);
      if (serverVersionNum >= 160000) expect(membership.membership).toMatchObject({ inherit: true, set: true });

      // Revoke every held item (grants handed on cascade away with them), then check nothing is left.
      for (const grant of before.filter((b) => b.grantee === role)) {
        await (grant.database === null ? f.sql(revokeSql(grant)) : client.query(revokeSql(grant)));
      }
      const { rows: me } = await client.query<{ u: string }>('select current_user as u');
      expect(me[0]?.u).not.toBe(owner); // SET LOCAL ROLE ended with each transaction
      const left = [...(await fetchLocalGrants(client, database, role)), ...(await fetchSharedGrants(client, role))];
      expect(left).toEqual([]);
      const { rows: can } = await client.query<{ ok: boolean }>(`select has_table_privilege($1, 's.t', 'SELECT') as ok`, [role]);
      expect(can[0]?.ok).toBe(false);

      // Restore in order: held grants first (the grant option), then those handed on.
      for (const grant of [...before.filter((b) => b.grantee === role), ...before.filter((b) => b.grantee !== role)]) {
        await (grant.database === null ? f.sql(restoreSql(grant)) : client.query(restoreSql(grant)));
      }
      const after = [...(await fetchLocalGrants(client, database, role)), ...(await fetchSharedGrants(client, role))];
      expect(after.map(key).sort()).toEqual(before.map(key).sort());
    } finally {
      await client.end();
    }
  });
});
