/** `pgwarden config check`: validate the configuration and print the effective one, redacted. */
import { stringify } from 'yaml';
import { passwordOrigin } from '../config/directories.js';
import { redactSettings } from '../config/load.js';
import { loadContext, type GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { printJson } from './output.js';

export async function runConfigCheck(globals: GlobalOptions, io: Io): Promise<void> {
  const context = loadContext(globals, io);
  const effective = redactSettings(context.config.settings);
  if (context.json) await printJson(io.stdout, effective);
  else {
    const from = context.config.source ?? 'no file (defaults and environment)';
    io.stdout.write(`# configuration is valid: ${context.config.policies.length} policies, ${context.config.targets.length} target(s), from ${from}\n`);
    for (const d of context.config.directories) {
      io.stdout.write(`# directory ${d.name}: bind password from ${passwordOrigin(d.bindPasswordSource)}\n`);
    }
    io.stdout.write(stringify(effective));
  }
}
