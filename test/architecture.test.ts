/**
 * The layout rules of docs/architecture.md, checked on the source itself: SQL text lives under
 * src/db/ only, and a policy kind is named by its own module and the registry only (the demo's
 * configuration and scene are data; a kind's own metrics are declared in its module).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { POLICY_KINDS } from '../src/policies/registry.js';

const ROOT = join(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** The text of every string and template literal of a file, interpolations as `x`, with its line. */
function literals(path: string): { line: number; text: string }[] {
  const file = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: { line: number; text: string }[] = [];
  const visit = (node: ts.Node): void => {
    let text: string | null = null;
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) text = node.text;
    else if (ts.isTemplateExpression(node)) text = node.head.text + node.templateSpans.map((s) => `x${s.literal.text}`).join('');
    if (text !== null) out.push({ line: file.getLineAndCharacterOfPosition(node.getStart()).line + 1, text });
    ts.forEachChild(node, visit);
  };
  visit(file);
  return out;
}

/**
 * A statement, not prose about one: the shapes PostgreSQL parses (`select … from`, `alter role x
 * …`, `grant … on … to`, `reassign owned by`, a transaction block), or a call of a server function
 * that acts. Prose that names a statement (“REASSIGN OWNED and DROP OWNED need …”) does not match.
 */
const STATEMENT = new RegExp(
  [
    String.raw`^\s*select\s[\s\S]*\bfrom\s`,
    String.raw`^\s*select\s+[a-z_]+\s*\(`,
    String.raw`^\s*select\s+\d+\s*$`,
    String.raw`^\s*with\s+\w+\s+as\s*\(`,
    String.raw`^\s*(alter|create)\s+(role|user|database|table|schema)\s+("|x\b|\w+\s+(with|login|nologin|password|valid|connection|owner|allow_connections|createrole|createdb|inherit|rename|set)\b)`,
    String.raw`^\s*drop\s+(role|database|table|schema)\s+(if\s+exists\s+)?("|x\b|\w+\s*(;|$))`,
    String.raw`^\s*alter\s+default\s+privileges\s[\s\S]*\s(grant|revoke)\s`,
    String.raw`^\s*grant\s+[\w, ]+\s+on\s+(database|schema|table|tables|function|sequence|all|type|parameter)\s[\s\S]*\sto\s`,
    String.raw`^\s*grant\s+("[^"]*"|x|\w+)\s+to\s+("|x\b)`,
    String.raw`^\s*revoke\s+[\w, ]+\s+on\s[\s\S]*\sfrom\s`,
    String.raw`^\s*(reassign|drop)\s+owned\s+by\s`,
    String.raw`^\s*begin\s*;`,
    String.raw`^\s*set\s+(local\s+)?\w+\s*(=|to)\s`,
    String.raw`\bpg_(terminate|cancel)_backend\s*\(`,
    String.raw`\bpg_try_advisory_lock\s*\(`,
    String.raw`\bcurrent_setting\s*\(`,
  ].join('|'),
  'i',
);

describe('layout', () => {
  const files = sourceFiles(SRC).map((path) => ({ path, name: relative(ROOT, path).split('\\').join('/') }));

  it('the statement check tells statements from prose', () => {
    for (const sql of [
      'select 1 from pg_roles where rolname = $1',
      'alter role x nologin',
      'grant connect on database x to x',
      'GRANT x TO x WITH ADMIN OPTION',
      'revoke connect on database x from public',
      'reassign owned by x to x',
      'drop role x',
      'begin; reassign owned by x to x; rollback',
      'select pg_try_advisory_lock($1::bigint) as locked',
    ]) {
      expect(STATEMENT.test(sql), sql).toBe(true);
    }
    for (const prose of [
      'REASSIGN OWNED and DROP OWNED need the privileges of x',
      'DROP ROLE once every database is done',
      'GRANT CONNECT on DATABASE (repeatable)',
      'revoke 3 privilege grant(s) from x: proceed?',
      'ALTER DEFAULT PRIVILEGES FOR ROLE x',
    ]) {
      expect(STATEMENT.test(prose), prose).toBe(false);
    }
  });

  it('has no SQL text outside src/db/ (the demo is data)', () => {
    const outside = files.filter((f) => !f.name.startsWith('src/db/') && !f.name.startsWith('src/demo/'));
    const found = outside.flatMap((f) => literals(f.path).filter((l) => STATEMENT.test(l.text)).map((l) => `${f.name}:${l.line}: ${l.text.slice(0, 80)}`));
    expect(found).toEqual([]);
  });

  it('names a policy kind in its module and the registry only', () => {
    expect(POLICY_KINDS.length).toBeGreaterThan(0);
    for (const kind of POLICY_KINDS) {
      const naming = files
        .filter((f) => !f.name.startsWith('src/demo/'))
        .filter((f) => readFileSync(f.path, 'utf8').includes(kind))
        .map((f) => f.name)
        .sort();
      expect(naming, kind).toEqual([`src/policies/${kind.replaceAll('_', '-')}.ts`, 'src/policies/registry.ts'].sort());
    }
  });

  it('starts with commander only: a command module is imported when its command runs (src/cli/commands.ts)', () => {
    const reached = staticImports(join(SRC, 'main.ts'));
    expect(reached.packages).toEqual(['commander']);
    // The definitions and what they need to parse (durations, session states), no command module.
    const commandModules = [...readFileSync(join(SRC, 'cli', 'commands.ts'), 'utf8').matchAll(/await import\('\.\/([\w-]+)\.js'\)/g)].map((m) => `src/cli/${m[1]}.ts`);
    expect(new Set(commandModules).size).toBe(14);
    expect(reached.files.filter((f) => commandModules.includes(f))).toEqual([]);
  });
});

/**
 * What loading `entry` loads: the source files and packages reached through static imports that
 * are not type-only (`import type`, or every name `type`), which the compiler erases. `await
 * import()` is not followed: it loads when it runs. Node's builtins (`node:`) are left out.
 */
function staticImports(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (path: string): void => {
    const name = relative(ROOT, path).split('\\').join('/');
    if (files.has(name)) return;
    files.add(name);
    const file = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
    for (const statement of file.statements) {
      let specifier: string | undefined;
      if (ts.isImportDeclaration(statement)) {
        const clause = statement.importClause;
        const named = clause?.namedBindings;
        const typeOnly =
          clause !== undefined &&
          (clause.isTypeOnly || (clause.name === undefined && named !== undefined && ts.isNamedImports(named) && named.elements.every((e) => e.isTypeOnly)));
        if (!typeOnly) specifier = (statement.moduleSpecifier as ts.StringLiteral).text;
      } else if (ts.isExportDeclaration(statement) && statement.moduleSpecifier && !statement.isTypeOnly) {
        specifier = (statement.moduleSpecifier as ts.StringLiteral).text;
      }
      if (specifier === undefined || specifier.startsWith('node:')) continue;
      if (specifier.startsWith('.')) visit(join(path, '..', specifier.replace(/\.js$/, '.ts')));
      else packages.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] as string));
    }
  };
  visit(entry);
  return { files: [...files].sort(), packages: [...packages].sort() };
}
