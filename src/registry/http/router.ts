/**
 * One request from start to end: route it, check the method, authorize the
 * scopes the route needs, run the handler, and turn any error into the OCI
 * error response (errors.ts is the only mapping). A handler's failure never
 * reaches the server: every error ends in a response or a closed socket.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../util/log.js';
import type { Scope } from '../auth/access.js';
import type { Authenticator } from '../auth/authenticator.js';
import { RegistryError, ociError } from '../errors.js';
import type { Registry } from '../registry.js';
import type { RequestContext } from './context.js';
import { cancelUpload, deleteBlob, getBlob, patchUpload, putUpload, startUpload, uploadStatus } from './handlers/blobs.js';
import { catalog, listTags, ping, referrers, token } from './handlers/discovery.js';
import { deleteManifest, getManifest, putManifest } from './handlers/manifests.js';
import { API_VERSION, API_VERSION_HEADER, sendError } from './respond.js';
import { METHODS, type Route, matchRoute } from './routes.js';

type Handler = (ctx: RequestContext) => Promise<void> | void;

const HANDLERS: Record<string, Handler> = {
  'GET base': ping,
  'HEAD base': ping,
  'GET catalog': catalog,
  'GET token': token,
  'POST token': token,
  'POST uploads': startUpload,
  'GET upload': uploadStatus,
  'PATCH upload': patchUpload,
  'PUT upload': putUpload,
  'DELETE upload': cancelUpload,
  'GET blob': getBlob,
  'HEAD blob': getBlob,
  'DELETE blob': deleteBlob,
  'GET manifest': getManifest,
  'HEAD manifest': getManifest,
  'PUT manifest': putManifest,
  'DELETE manifest': deleteManifest,
  'GET tags': listTags,
  'GET referrers': referrers,
};

/** The access a request needs; undefined for the token endpoint, which checks credentials itself. */
function requiredScopes(route: Route, method: string): Scope[] | undefined {
  const repo = (actions: string[]): Scope[] => [{ type: 'repository', name: route.name, actions }];
  switch (route.kind) {
    case 'token':
      return undefined;
    case 'base':
      return [];
    case 'catalog':
      return [{ type: 'registry', name: 'catalog', actions: ['*'] }];
    case 'uploads':
    case 'upload':
      return repo(['push']);
    case 'blob':
    case 'manifest':
      if (method === 'DELETE') return repo(['delete']);
      if (method === 'PUT') return repo(['push']);
      return repo(['pull']);
    case 'tags':
    case 'referrers':
      return repo(['pull']);
  }
}

export class Router {
  constructor(
    private readonly registry: Registry,
    private readonly auth: Authenticator,
    private readonly log: Logger,
    private readonly secure: boolean,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    res.setHeader(API_VERSION_HEADER, API_VERSION);
    const method = req.method ?? 'GET';
    let status = 0;
    try {
      const url = parseRequestUrl(req.url);
      const route = matchRoute(url.pathname);
      // Unknown paths are 404s, as in every registry, still with an OCI body.
      if (route === undefined) throw new RegistryError('UNSUPPORTED', `no such endpoint: ${method} ${url.pathname}`, undefined, 404);
      if (!METHODS[route.kind].includes(method)) {
        res.setHeader('Allow', METHODS[route.kind].join(', '));
        throw ociError('UNSUPPORTED', `method ${method} not allowed on ${url.pathname}`);
      }
      const scopes = requiredScopes(route, method);
      const identity = scopes === undefined ? { account: 'anonymous', via: 'none' as const } : await this.auth.authorize(req, scopes, this.secure);
      const ctx: RequestContext = { req, res, url, route, registry: this.registry, auth: this.auth, identity, secure: this.secure, log: this.log };
      await HANDLERS[`${method} ${route.kind}`]!(ctx);
      status = res.statusCode;
    } catch (err) {
      const mapped = sendError(req, res, err);
      status = mapped.status;
      if (mapped.internal) this.log.error('request failed', { method, url: req.url, status, err: err as Error });
      else if (mapped.status !== 401 && mapped.status !== 404) this.log.info('request refused', { method, url: req.url, status, code: mapped.body.errors[0]?.code, err: err as Error });
    } finally {
      if (this.log.enabled('debug')) {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        this.log.debug('request', { method, url: req.url, status, ms: Math.round(ms * 10) / 10 });
      }
    }
  }
}

function parseRequestUrl(raw: string | undefined): URL {
  try {
    return new URL(raw ?? '/', 'http://registry.invalid');
  } catch {
    throw new RegistryError('UNSUPPORTED', 'malformed request URL', undefined, 400);
  }
}
