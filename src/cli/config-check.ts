/** `pgwarden config check`: validate the configuration and print the effective one, redacted. */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { passwordOrigin } from '../config/directories.js';
import { redactSettings } from '../config/load.js';
import { loadContext, type GlobalOptions } from './context.js';
import type { Io } from './io.js';
import { printJson } from './output.js';

function runConfigCheck(globals: GlobalOptions, io: Io): void {
  const context = loadContext(globals, io);
  const effective = redactSettings(context.config.settings);
  if (context.json) printJson(io.stdout, effective);
  else {
    const from = context.config.source ?? 'no file (defaults and environment)';
    io.stdout.write(`# configuration is valid: ${context.config.policies.length} policies, ${context.config.targets.length} target(s), from ${from}\n`);
    for (const d of context.config.directories) {
      io.stdout.write(`# directory ${d.name}: bind password from ${passwordOrigin(d.bindPasswordSource)}\n`);
    }
    io.stdout.write(stringify(effective));
  }
}

export function registerConfig(program: Command, io: Io): void {
  const config = program.command('config').description('configuration tools');
  config
    .command('check')
    .description('validate the configuration and print the effective one, secrets redacted')
    .action((_options: unknown, command: Command) => {
      runConfigCheck(command.optsWithGlobals<GlobalOptions>(), io);
    });
}
