#!/usr/bin/env node
/** The pgwarden binary: runs the command line and exits with its code. */
import { processIo } from './cli/io.js';
import { runCli } from './cli/program.js';

const code = await runCli(process.argv.slice(2), processIo());
process.exitCode = code;
