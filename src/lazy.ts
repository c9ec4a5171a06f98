/**
 * Libraries most commands never use, required when first needed instead of imported at start-up:
 * every `pgwarden` command paid for loading them, `roles` on 100,000 roles included (issue 19;
 * yaml 72 modules and 0.07-0.1 s, ldapts and node-cron about 10 ms each). Required, not imported,
 * so that their callers stay synchronous (configuration is validated synchronously); the
 * CommonJS build each package ships is then the one copy loaded, daemon included.
 */
import { createRequire } from 'node:module';
import type * as Ldapts from 'ldapts';
import type * as NodeCron from 'node-cron';
import type * as Yaml from 'yaml';

const require = createRequire(import.meta.url);

/** ldapts (directory searches, LDAP filter validation). */
export function ldapts(): typeof Ldapts {
  return require('ldapts') as typeof Ldapts;
}

/** node-cron (schedule validation, the daemon's tasks). */
export function nodeCron(): typeof NodeCron {
  return require('node-cron') as typeof NodeCron;
}

/** yaml (configuration files; yaml is CommonJS: `import` would give its `node` export). */
export function yaml(): typeof Yaml {
  return require('yaml') as typeof Yaml;
}
