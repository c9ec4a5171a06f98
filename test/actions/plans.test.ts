/**
 * The pure planners of the manual commands: planOffboard (the order of an offboard is its
 * contract) and planAddUser (only what is missing, never LOGIN back on, the password last). No
 * database: facts in, plans out.
 */
import { describe, expect, it } from 'vitest';
import { planAddUser, type AddUserRequest } from '../../src/actions/adduser.js';
import { planOffboard } from '../../src/actions/offboard.js';
import type { ExistingUser } from '../../src/db/user-state.js';
import { session } from '../support/sessions.js';

describe('planOffboard', () => {
  const sessions = [
    session({ pid: 501, role: 'leaver' }),
    session({ pid: 502, role: 'leaver', database: 'crm' }),
    session({ pid: 503, role: 'stayer' }),
    // pgwarden's own backend and a background worker of the role: never terminated.
    session({ pid: 504, role: 'leaver' }),
    session({ pid: 505, role: 'leaver', backendType: 'parallel worker' }),
  ];
  const base = {
    target: 't',
    role: 'leaver',
    newOwner: 'heir',
    login: true,
    sessions,
    ownPids: new Set([504]),
    databases: [
      { name: 'shop', canConnect: true },
      { name: 'crm', canConnect: false },
    ],
    drop: true,
  };

  it('orders NOLOGIN, the terminations, REASSIGN then DROP OWNED per database, DROP ROLE last', () => {
    const plan = planOffboard(base);
    expect(plan.actions.map((a) => [a.action, a.database ?? a.session?.pid ?? null])).toEqual([
      ['nologin', null],
      ['terminate', 'shop'],
      ['terminate', 'crm'],
      ['reassign_owned', 'shop'],
      ['drop_owned', 'shop'],
      ['reassign_owned', 'crm'],
      ['drop_owned', 'crm'],
      ['drop_role', null],
    ]);
    expect(plan.actions.filter((a) => a.action === 'terminate').map((a) => a.session?.pid)).toEqual([501, 502]);
    expect(plan.actions.every((a) => a.result === 'planned')).toBe(true);
    expect(plan.databases).toEqual({ shop: 'pending', crm: 'pending' });
    expect(plan.unreachable).toEqual(['crm']);
  });

  it('writes each statement with the names quoted, and the NOLOGIN with its restore', () => {
    const plan = planOffboard({ ...base, role: 'Léa "x"', newOwner: 'new owner', sessions: [], databases: [{ name: 'Big DB', canConnect: true }] });
    expect(plan.actions.map((a) => a.sql)).toEqual([
      'alter role "Léa ""x""" nologin',
      'reassign owned by "Léa ""x""" to "new owner"',
      'drop owned by "Léa ""x"""',
      'drop role "Léa ""x"""',
    ]);
    expect(plan.actions[0]?.restore).toBe('alter role "Léa ""x""" login');
  });

  it('leaves out NOLOGIN for a role that cannot log in already, and DROP ROLE without --drop', () => {
    const plan = planOffboard({ ...base, login: false, drop: false, sessions: [], databases: [] });
    expect(plan.actions).toEqual([]);
    expect(plan.unreachable).toEqual([]);
  });
});

describe('planAddUser', () => {
  const request: AddUserRequest = {
    role: 'New User',
    validUntil: '2027-06-01T00:00:00.000Z',
    connLimit: 5,
    inRoles: ['readers'],
    connect: ['shop'],
    schemas: [{ database: 'shop', schema: 'sales', privileges: ['USAGE', 'CREATE'] }],
  };
  const existing = (overrides: Partial<ExistingUser> = {}): ExistingUser => ({
    login: true,
    superuser: false,
    validUntil: null,
    connLimit: -1,
    memberOf: new Set(),
    connect: new Set(),
    schemaPrivileges: new Map(),
    ...overrides,
  });

  it('creates the role with its options, grants, and sets the password last in the cluster-wide steps, printed redacted', () => {
    const plan = planAddUser('t', request, null);
    expect(plan.created).toBe(true);
    expect(plan.steps.map((s) => [s.action, s.sql, s.inDatabase])).toEqual([
      ['create_role', `create role "New User" login valid until '2027-06-01T00:00:00.000Z' connection limit 5`, false],
      ['grant_role', 'grant "readers" to "New User"', false],
      ['grant_connect', 'grant connect on database "shop" to "New User"', false],
      ['set_password', `alter role "New User" password '***'`, false],
      ['grant_schema', 'grant usage, create on schema "sales" to "New User"', true],
    ]);
    expect(plan.steps.find((s) => s.action === 'grant_schema')).toMatchObject({ database: 'shop', schema: 'sales', privileges: ['USAGE', 'CREATE'] });
    expect(plan.unchanged).toEqual([]);
  });

  it('--update: only what is missing; an expiry or limit already set is left, and said so', () => {
    const plan = planAddUser(
      't',
      request,
      existing({
        validUntil: '2027-01-01T00:00:00.000Z',
        connLimit: 10,
        memberOf: new Set(['readers']),
        connect: new Set(['shop']),
        schemaPrivileges: new Map([['shop\u0000sales', new Set(['USAGE'])]]),
      }),
    );
    expect(plan.created).toBe(false);
    expect(plan.steps.map((s) => s.sql)).toEqual(['grant create on schema "sales" to "New User"']);
    expect(plan.unchanged).toEqual([
      'valid until 2027-01-01T00:00:00.000Z: left as it is (change it with pgwarden passwd --valid-until)',
      'connection limit 10: left as it is',
      'member of readers: already',
      'CONNECT on database shop: already granted',
      'USAGE on schema sales in shop: already granted',
    ]);
  });

  it('--update fills in an expiry and a limit that are not set, never the password, never LOGIN back on', () => {
    const plan = planAddUser('t', { ...request, inRoles: [], connect: [], schemas: [] }, existing({ login: false, validUntil: 'infinity' }));
    expect(plan.steps.map((s) => [s.action, s.sql])).toEqual([
      ['set_valid_until', `alter role "New User" valid until '2027-06-01T00:00:00.000Z'`],
      ['set_conn_limit', 'alter role "New User" connection limit 5'],
    ]);
    expect(plan.unchanged[0]).toMatch(/is NOLOGIN: left as it is/);
  });

  it('--update keeps a -infinity expiry (password logins refused for good) and reports the same instant as set', () => {
    expect(planAddUser('t', { ...request, connLimit: undefined, inRoles: [], connect: [], schemas: [] }, existing({ validUntil: '-infinity' })).steps).toEqual([]);
    const same = planAddUser('t', { ...request, connLimit: undefined, inRoles: [], connect: [], schemas: [] }, existing({ validUntil: '2027-06-01T00:00:00Z' }));
    expect(same.steps).toEqual([]);
    expect(same.unchanged).toEqual(['valid until 2027-06-01T00:00:00Z: already set']);
  });
});
