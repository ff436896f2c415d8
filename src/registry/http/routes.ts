/**
 * URL routing for the Distribution API. Repository names hold slashes, so
 * each route is matched from its fixed suffix (`/blobs/uploads/`, `/manifests/x`);
 * names and references are checked against the spec's grammar here, before
 * any handler sees them.
 */
import { ociError } from '../errors.js';
import { checkRepositoryName } from '../names.js';

export type RouteKind = 'base' | 'catalog' | 'token' | 'uploads' | 'upload' | 'blob' | 'manifest' | 'tags' | 'referrers';

export interface Route {
  kind: RouteKind;
  name: string;
  /** The upload id, blob digest, manifest reference or referrers subject. */
  param: string;
}

const PATTERNS: [RouteKind, RegExp][] = [
  ['uploads', /^\/v2\/(.+)\/blobs\/uploads\/?$/],
  ['upload', /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/],
  ['blob', /^\/v2\/(.+)\/blobs\/([^/]+)$/],
  ['manifest', /^\/v2\/(.+)\/manifests\/([^/]+)$/],
  ['tags', /^\/v2\/(.+)\/tags\/list$/],
  ['referrers', /^\/v2\/(.+)\/referrers\/([^/]+)$/],
];

export const METHODS: Record<RouteKind, string[]> = {
  base: ['GET', 'HEAD'],
  catalog: ['GET'],
  token: ['GET', 'POST'],
  uploads: ['POST'],
  upload: ['GET', 'PATCH', 'PUT', 'DELETE'],
  blob: ['GET', 'HEAD', 'DELETE'],
  manifest: ['GET', 'HEAD', 'PUT', 'DELETE'],
  tags: ['GET'],
  referrers: ['GET'],
};

/** The route of a path, undefined when it is none of the API's. Throws NAME_INVALID for a bad name. */
export function matchRoute(pathname: string): Route | undefined {
  if (pathname === '/v2/' || pathname === '/v2') return { kind: 'base', name: '', param: '' };
  if (pathname === '/v2/_catalog') return { kind: 'catalog', name: '', param: '' };
  if (pathname === '/token') return { kind: 'token', name: '', param: '' };
  if (!pathname.startsWith('/v2/')) return undefined;
  for (const [kind, re] of PATTERNS) {
    const m = re.exec(pathname);
    if (m === null) continue;
    let param = m[2] ?? '';
    try {
      param = decodeURIComponent(param);
    } catch {
      throw ociError('NAME_INVALID', 'malformed percent-encoding in path');
    }
    return { kind, name: checkRepositoryName(m[1]!), param };
  }
  return undefined;
}
