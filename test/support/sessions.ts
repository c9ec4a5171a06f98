/** Fixture snapshots for the pure rule and planner tests (no database). */
import type { Identity, Session, Snapshot } from '../../src/db/snapshot.js';

let nextPid = 1000;

export function session(overrides: Partial<Session> = {}): Session {
  const pid = overrides.pid ?? nextPid++;
  return {
    pid,
    role: 'app_web',
    superuser: false,
    database: 'shop',
    application: 'web',
    clientAddr: '10.0.0.5',
    clientPort: 50000,
    state: 'idle',
    backendType: 'client backend',
    backendStart: new Date('2026-11-25T10:00:00.123Z'),
    backendStartUs: `1764064800123${String(pid).padStart(3, '0').slice(-3)}`,
    xactStart: null,
    queryStart: null,
    stateChange: null,
    stateSeconds: 10,
    xactSeconds: null,
    querySeconds: 10,
    backendSeconds: 10,
    waitEventType: 'Client',
    waitEvent: 'ClientRead',
    query: 'select 1',
    hidden: false,
    signallable: true,
    ...overrides,
  };
}

/** pgwarden connected as `pgwarden`, with pg_read_all_stats and pg_signal_backend. */
export const IDENTITY: Identity = {
  role: 'pgwarden',
  currentRole: 'pgwarden',
  bootstrapRole: 'postgres',
  superuser: false,
  readAllStats: true,
  signalBackend: true,
};

export function snapshot(sessions: Session[], target = 'default', self: Identity = IDENTITY): Snapshot {
  return { target, takenAt: new Date(), serverVersionNum: 170000, clockUs: Date.now() * 1000, self, sessions, slots: { maxConnections: 100, superuserReserved: 3, reserved: 0, usable: 97 } };
}
