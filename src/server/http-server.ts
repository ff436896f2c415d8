/**
 * The Engine API HTTP server: one listener on a UNIX socket, versioned
 * (/v1.24 ... /v1.44) and unversioned paths, Docker's headers on every
 * response, errors mapped in one place, Upgrade requests for attach/exec.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { API_VERSION, MIN_API_VERSION, commonHeaders, compareVersions, parseApiVersion } from '../api/version.js';
import { errorBody, httpStatus } from '../api/errors.js';
import { errorMessage, invalidArgument, isKind } from '../core/errdefs/index.js';
import type { Logger } from '../util/log.js';
import { RequestContext } from './context.js';
import type { Router } from './router.js';

const VERSION_PREFIX = /^\/v(\d+\.\d+)(\/.*)$/;

export class ApiServer {
  private readonly server: http.Server;
  private readonly sockets = new Set<Duplex>();

  constructor(
    private readonly router: Router,
    private readonly log: Logger,
    /** Called for each request (the daemon's idle-time housekeeping watches it). */
    private readonly onRequest: () => void = () => {},
  ) {
    this.server = http.createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 });
    this.server.on('request', (req, res) => {
      this.onRequest();
      void this.dispatch(req, res, undefined, undefined);
    });
    this.server.on('upgrade', (req, socket, head) => {
      this.onRequest();
      void this.dispatch(req, undefined, socket, head);
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    });
  }

  async listen(socketPath: string, mode = 0o660): Promise<void> {
    await fsp.mkdir(path.dirname(socketPath), { recursive: true });
    // A stale socket from a crashed daemon would make listen fail.
    try {
      if ((await fsp.lstat(socketPath)).isSocket()) await fsp.rm(socketPath);
    } catch {
      // not there
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(socketPath, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(socketPath, mode);
  }

  /** Stops accepting; open streams (logs -f, events, attach) are closed. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse | undefined, socket: Duplex | undefined, head: Buffer | undefined): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let pathname = q === -1 ? url : url.slice(0, q);
    const rawQuery = q === -1 ? '' : url.slice(q + 1);
    let version = API_VERSION;
    const m = VERSION_PREFIX.exec(pathname);
    if (m) {
      version = m[1];
      pathname = m[2];
    }
    const ctx = new RequestContext(req, res, socket, head, pathname, rawQuery, parseApiVersion(version), this.log);
    if (res) for (const [k, v] of Object.entries(commonHeaders())) res.setHeader(k, v);
    const started = process.hrtime.bigint();
    try {
      if (compareVersions(version, API_VERSION) > 0) {
        throw invalidArgument(`client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
      }
      if (compareVersions(version, MIN_API_VERSION) < 0) {
        throw invalidArgument(
          `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
        );
      }
      const route = this.router.match(req.method === 'HEAD' && pathname === '/_ping' ? 'HEAD' : (req.method ?? 'GET'), pathname);
      if (!route || 'methodMismatch' in route) {
        ctx.text(404, '{"message":"page not found"}\n', { 'Content-Type': 'application/json' });
        return;
      }
      ctx.params = route.params;
      await route.handler(ctx);
    } catch (err) {
      this.fail(ctx, err);
    } finally {
      if (this.log.enabled('debug')) {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        this.log.debug('request', { method: req.method, path: pathname, ms: Math.round(ms * 10) / 10 });
      }
    }
  }

  private fail(ctx: RequestContext, err: unknown): void {
    const status = httpStatus(err);
    if (status >= 500) this.log.error('request failed', { method: ctx.req.method, path: ctx.path, error: errorMessage(err) });
    else this.log.debug('request refused', { method: ctx.req.method, path: ctx.path, status, error: errorMessage(err) });
    if (!ctx.responded) {
      if (isKind(err, 'NotModified')) ctx.empty(304);
      else ctx.text(status, errorBody(err), { 'Content-Type': 'application/json' });
      return;
    }
    // Headers are out: report inside the stream if it is a progress stream, else cut the connection.
    if (ctx.res && !ctx.res.writableEnded) {
      const message = errorMessage(err);
      const ct = String(ctx.res.getHeader('Content-Type') ?? '');
      if (ct === 'application/json') ctx.res.end(JSON.stringify({ errorDetail: { message }, error: message }) + '\r\n');
      else ctx.res.destroy();
    }
  }
}
