/**
 * The demo's configuration: the example's policies with limits of seconds instead of minutes and
 * a 2-second schedule, so the scene breaks them at once. Given as PGWARDEN_* variables (the same
 * documented route as a deployment's environment), built from nothing: a PGWARDEN_CONFIG or
 * database URL in the caller's environment must never point the demo at a real server.
 */
import { DISABLED_MARKER, SCENE_ROLES } from './scene.js';

/** Seconds between two runs of every policy of the demo. */
export const DEMO_EVERY_SECONDS = 2;
/** Every policy of the demo runs on this schedule (6 fields: seconds first). */
export const DEMO_SCHEDULE = `*/${DEMO_EVERY_SECONDS} * * * * *`;

/** The limit of the session policies, in seconds: the scene is left this long (and a little more) before the plan. */
export const DEMO_LIMIT_SECONDS = 3;

const limit = `${DEMO_LIMIT_SECONDS}s`;

/** The demo's policies, in the shape of the configuration file's `policies` list. */
export const DEMO_POLICIES = [
  { name: 'idle-sessions', kind: 'idle_session', schedule: DEMO_SCHEDULE, maxIdle: limit, action: 'terminate', match: { roles: ['app_*'] } },
  { name: 'lock-blockers', kind: 'lock_blocker', schedule: DEMO_SCHEDULE, maxBlocked: limit, action: 'terminate' },
  {
    name: 'long-queries',
    kind: 'long_query',
    schedule: DEMO_SCHEDULE,
    maxDuration: limit,
    action: 'cancel',
    escalateAfter: '4s',
    match: { roles: [SCENE_ROLES.analyst] },
  },
  { name: 'password-expiry', kind: 'password_expiry', schedule: DEMO_SCHEDULE, warnWithin: '7d', action: 'nologin', grace: '1d' },
  {
    name: 'disabled-users',
    kind: 'disabled_role',
    schedule: DEMO_SCHEDULE,
    disabledWhen: { memberOf: DISABLED_MARKER },
    // NOLOGIN is the lockout; revoke_connect (in the default list) would add a line per database
    // of the throwaway server, most of them reachable through PUBLIC anyway.
    actions: ['nologin', 'terminate'],
  },
] as const;

/** The environment the demo's commands and daemon read their configuration from. */
export function demoEnvironment(serverUrl: string): NodeJS.ProcessEnv {
  return {
    PGWARDEN_DATABASE_URL: serverUrl,
    PGWARDEN_MODE: 'enforce',
    // Loopback only, on a port the system picks: the demo must not collide with a running pgwarden.
    PGWARDEN_SERVER_HOST: '127.0.0.1',
    PGWARDEN_SERVER_PORT: '0',
    PGWARDEN_EXEMPT_ROLES: 'postgres',
    PGWARDEN_LEADER_POLL_INTERVAL: '1s',
    PGWARDEN_SHUTDOWN_TIMEOUT: '5s',
    PGWARDEN_LOG_LEVEL: 'info',
    PGWARDEN_POLICIES: JSON.stringify(DEMO_POLICIES),
  };
}
