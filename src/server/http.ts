/**
 * /metrics, /healthz and /readyz on node:http. /healthz answers while the process and its event
 * loop are alive; /readyz once the configuration is loaded and at least one target answered its
 * last snapshot (a dead target among live ones keeps the pod ready: pgwarden_up says the rest).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/registry.js';
import type { TargetState } from '../engine.js';

export interface HttpServer {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: Metrics;
  readonly states: ReadonlyMap<string, TargetState>;
  readonly logger: Logger;
}

function targetsBody(states: ReadonlyMap<string, TargetState>): Record<string, TargetState> {
  return Object.fromEntries(states);
}

/** Starts listening; rejects when the address is taken. */
export function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'method not allowed' });
    if (path === '/metrics') {
      options.metrics.render().then(
        (text) => {
          res.writeHead(200, { 'content-type': options.metrics.contentType });
          res.end(text);
        },
        (err: unknown) => {
          options.logger.error({ err }, 'rendering /metrics failed');
          json(500, { error: 'metrics unavailable' });
        },
      );
      return;
    }
    if (path === '/healthz') return json(200, { status: 'ok', targets: targetsBody(options.states) });
    if (path === '/readyz') {
      const ready = [...options.states.values()].some((s) => s.up);
      return json(ready ? 200 : 503, { status: ready ? 'ready' : 'no target answered its last snapshot', targets: targetsBody(options.states) });
    }
    json(404, { error: 'not found', paths: ['/metrics', '/healthz', '/readyz'] });
  });
  // Slow or idle scrapers must not hold shutdown: close keep-alive sockets on close().
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      resolve({
        port: address.port,
        host: address.address,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
