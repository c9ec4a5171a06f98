/** The README is the front door: its configuration table must list every key of the schema. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { schema } from '../src/config/schema.js';

interface Leaf {
  env?: string;
  doc?: string;
  default?: unknown;
}

function leaves(node: Record<string, unknown>, prefix = ''): [string, Leaf][] {
  return Object.entries(node).flatMap(([key, value]) => {
    const v = value as Record<string, unknown>;
    return 'doc' in v ? [[`${prefix}${key}`, v]] : leaves(v, `${prefix}${key}.`);
  });
}

describe('README', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  it.each(leaves(schema))('documents %s with its env var', (key, leaf) => {
    expect(leaf.doc).toBeTruthy();
    expect(leaf.env).toMatch(/^PGWARDEN_/);
    expect(readme).toContain(`| \`${key}\` |`);
    expect(readme).toContain(`\`${leaf.env}\``);
  });
});
