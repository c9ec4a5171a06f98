/** A TargetDb on the test server, with a small pool and a silent logger; ended by the caller. */
import { pino } from 'pino';
import { TargetDb } from '../../src/db/pool.js';
import { testDatabaseUrl } from './fixture.js';

export function testTarget(name = 'default', url = testDatabaseUrl()): TargetDb {
  return new TargetDb({ name, url }, { connectTimeoutMs: 5000, statementTimeoutMs: 10_000, poolSize: 2 }, pino({ level: 'silent' }));
}
