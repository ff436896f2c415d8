/**
 * The composition root of `berth registry serve`: takes the root lock, opens
 * storage, builds authentication, listens on HTTP or HTTPS, runs periodic
 * garbage collection, and stops cleanly (in-flight requests finish, then the
 * lock is released).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { invalidArgument } from '../core/errdefs/index.js';
import type { Logger } from '../util/log.js';
import { AccessPolicy } from './auth/access.js';
import { type AuthOptions, Authenticator } from './auth/authenticator.js';
import { Htpasswd } from './auth/htpasswd.js';
import { TokenSigner } from './auth/token.js';
import { type RegistryConfig, parseAddr } from './config.js';
import { GarbageCollector, type GcReport } from './gc.js';
import { Router } from './http/router.js';
import { Registry } from './registry.js';
import { RootLock } from './root-lock.js';

export class RegistryServer {
  private gcTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly config: RegistryConfig,
    readonly registry: Registry,
    readonly gc: GarbageCollector,
    private readonly server: http.Server,
    private readonly lock: RootLock,
    private readonly log: Logger,
  ) {}

  static async start(config: RegistryConfig, log: Logger): Promise<RegistryServer> {
    const root = path.resolve(config.root);
    await fsp.mkdir(root, { recursive: true });
    const registry = new Registry({
      root,
      maxManifestBytes: config.maxManifestBytes,
      deleteEnabled: config.deleteEnabled,
      usageRetentionMs: config.gc.graceMs,
    });
    const gc = new GarbageCollector(
      registry,
      { graceMs: config.gc.graceMs, deleteUntagged: config.gc.deleteUntagged, uploadPurgeAfterMs: config.uploadPurgeAfterMs },
      log.child({ component: 'gc' }),
    );
    const lock = await RootLock.acquire(root, (req) => gc.run(req.dryRun));
    try {
      await registry.init();
      const auth = new Authenticator(await buildAuthOptions(config, registry.layout.authDir));
      const secure = config.tls !== undefined;
      const router = new Router(registry, auth, log, secure);
      const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
        void router.handle(req, res);
      };
      const server = secure
        ? https.createServer({ cert: fs.readFileSync(config.tls!.cert), key: fs.readFileSync(config.tls!.key) }, onRequest)
        : http.createServer(onRequest);
      // Large blobs stream for minutes: no total-request deadline, only idle sockets time out.
      server.requestTimeout = 0;
      server.headersTimeout = 60_000;
      server.keepAliveTimeout = 65_000;
      server.setTimeout(10 * 60_000, (socket) => socket.destroy());
      const { host, port } = parseAddr(config.addr);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      server.on('clientError', (err, socket) => {
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        else socket.destroy();
        log.debug('client error', { err });
      });
      const self = new RegistryServer(config, registry, gc, server, lock, log);
      self.schedulePeriodicGc();
      const addr = server.address() as AddressInfo;
      log.info('listening', { addr: `${addr.address}:${addr.port}`, tls: secure, auth: auth.mode, root });
      return self;
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    const addr = this.server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `${this.config.tls !== undefined ? 'https' : 'http'}://${host}:${addr.port}`;
  }

  runGc(dryRun: boolean): Promise<GcReport> {
    return this.gc.run(dryRun);
  }

  private schedulePeriodicGc(): void {
    const interval = this.config.gc.intervalMs;
    if (interval <= 0) return;
    this.gcTimer = setInterval(() => {
      if (this.gc.running) return;
      this.gc.run(false).catch((err: unknown) => this.log.error('garbage collection failed', { err: err as Error }));
    }, interval);
    this.gcTimer.unref();
  }

  /** Stops accepting, lets requests in flight finish (up to `graceMs`), then releases the root. */
  stop(graceMs = 10_000): Promise<void> {
    this.stopping ??= (async () => {
      if (this.gcTimer !== undefined) clearInterval(this.gcTimer);
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeIdleConnections();
      const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
      await this.lock.release();
      this.log.info('stopped');
    })();
    return this.stopping;
  }
}

async function buildAuthOptions(config: RegistryConfig, authDir: string): Promise<AuthOptions> {
  const a = config.auth;
  const policy = new AccessPolicy(a.access, a.anonymousPull);
  const basicRealm = 'Berth Registry';
  if (a.htpasswd === undefined) {
    if (a.token !== undefined) throw invalidArgument('token auth needs an htpasswd file (--htpasswd) for its users');
    if (a.access !== undefined) throw invalidArgument('access rules need authentication: give --htpasswd');
    return { mode: 'none', policy, basicRealm };
  }
  const htpasswd = await Htpasswd.load(a.htpasswd);
  if (a.token === undefined) return { mode: 'basic', htpasswd, policy, basicRealm };
  const key = await TokenSigner.loadKey(a.token.keyFile ?? path.join(authDir, 'token.key'));
  const token: AuthOptions['token'] = {
    signer: new TokenSigner(key, a.token.issuer, a.token.service),
    accessTokenSeconds: a.token.expirySeconds,
    refreshTokenSeconds: a.token.refreshExpirySeconds,
  };
  if (a.token.realm !== undefined) token.realm = a.token.realm;
  return { mode: 'token', htpasswd, policy, token, basicRealm };
}
