#!/usr/bin/env node
/** The pgwarden binary: runs the command line and exits with its code. */
import { processIo } from './cli/io.js';
import { runCli } from './cli/program.js';

// Output piped into `head` that closed early is not an error of ours: stop quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const code = await runCli(process.argv.slice(2), processIo());
process.exitCode = code;
