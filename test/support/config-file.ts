/**
 * Configuration files for tests that run the command line: written as JSON (which is YAML too)
 * under one temporary directory per test file, removed after the file's tests.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** Call at a test file's top level: returns a writer of config files, each under a fresh name. */
export function useConfigFiles(label: string, extension: 'json' | 'yaml' = 'json'): (doc: unknown) => string {
  const dir = mkdtempSync(join(tmpdir(), `pgwarden-${label}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return (doc) => {
    const path = join(dir, `${Math.random().toString(36).slice(2)}.${extension}`);
    writeFileSync(path, JSON.stringify(doc));
    return path;
  };
}
