/**
 * No Docker engine runs here, so the image cannot be built: this test does what the runtime stage
 * does — a production-only `npm ci --omit=dev --ignore-scripts` tree with dist/ copied in — and
 * runs the ENTRYPOINT the Dockerfile names, with its configuration path.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/deploy.js';

const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');

describe('Dockerfile', () => {
  it('is multi-stage, non-root, exec-form entrypoint running `pgwarden run`, config at /etc/pgwarden', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^ARG NODE_VERSION=26$/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev --ignore-scripts/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "\/app\/dist\/main\.js"\]$/m);
    expect(dockerfile).toMatch(/^CMD \["run"\]$/m);
    expect(dockerfile).toMatch(/PGWARDEN_CONFIG=\/etc\/pgwarden\/pgwarden\.yaml/);
    const ignored = readFileSync(`${ROOT}.dockerignore`, 'utf8').split('\n');
    for (const path of ['node_modules', '.git', 'dist', 'test']) expect(ignored).toContain(path);
  });

  it('its entrypoint works from a production-only tree with dist/ copied in, as the runtime stage builds it', () => {
    const app = mkdtempSync(join(tmpdir(), 'pgwarden-image-'));
    try {
      for (const file of ['package.json', 'package-lock.json']) cpSync(`${ROOT}${file}`, join(app, file));
      execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app, stdio: 'pipe' });
      cpSync(`${ROOT}dist`, join(app, 'dist'), { recursive: true });
      // No dev dependency made it in.
      expect(spawnSync('ls', [join(app, 'node_modules', 'typescript')]).status).not.toBe(0);
      expect(spawnSync('ls', [join(app, 'node_modules', 'vitest')]).status).not.toBe(0);
      const env = { PATH: process.env.PATH, PGWARDEN_CONFIG: `${ROOT}config/pgwarden.example.yaml` };
      const help = spawnSync('node', [join(app, 'dist/main.js'), '--help'], { env, encoding: 'utf8' });
      expect(help.status).toBe(0);
      expect(help.stdout).toContain('run');
      const check = spawnSync('node', [join(app, 'dist/main.js'), 'config', 'check'], { env, encoding: 'utf8' });
      expect(check.stderr).toBe('');
      expect(check.status).toBe(0);
      expect(check.stdout).toContain('configuration is valid: 9 policies');
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});
