/**
 * Content discovery: the `/v2/` ping, tag lists and the catalog (both paged
 * with `n`/`last` and a `Link: <...>; rel="next"` header), and the referrers
 * API (an empty index for unknown subjects, never 404). Also the token
 * service endpoint, which is discovery of a kind: where credentials go.
 */
import { MediaType } from '../../../core/images/types.js';
import { ociError } from '../../errors.js';
import { parseDigestParam } from '../../names.js';
import type { RequestContext } from '../context.js';
import { readBody, sendJson } from '../respond.js';

export function ping(ctx: RequestContext): void {
  sendJson(ctx.res, 200, {}, {}, ctx.req.method === 'HEAD');
}

/** Reads `n` (page size); absent means everything. */
function pageSize(url: URL): number | undefined {
  const n = url.searchParams.get('n');
  if (n === null || n === '') return undefined;
  if (!/^\d+$/.test(n)) throw ociError('PAGINATION_NUMBER_INVALID', `invalid page size n=${JSON.stringify(n)}`, { n });
  return Number(n);
}

/** One page of a sorted list after `last`, and the Link header for the next page. */
function page(all: string[], url: URL, basePath: string): { items: string[]; link?: string } {
  const n = pageSize(url);
  const last = url.searchParams.get('last');
  let items = last === null || last === '' ? all : all.filter((x) => x > last);
  if (n === undefined) return { items };
  if (n === 0) return { items: [] };
  const more = items.length > n;
  items = items.slice(0, n);
  if (!more) return { items };
  const next = new URLSearchParams({ n: String(n), last: items[items.length - 1]! });
  return { items, link: `<${basePath}?${next.toString()}>; rel="next"` };
}

export async function listTags(ctx: RequestContext): Promise<void> {
  const { registry, route, url, res } = ctx;
  const tags = await registry.listTags(route.name);
  const { items, link } = page(tags, url, `/v2/${route.name}/tags/list`);
  sendJson(res, 200, { name: route.name, tags: items }, link === undefined ? {} : { Link: link });
}

export async function catalog(ctx: RequestContext): Promise<void> {
  const repos = await ctx.registry.listRepositories();
  const { items, link } = page(repos, ctx.url, '/v2/_catalog');
  sendJson(ctx.res, 200, { repositories: items }, link === undefined ? {} : { Link: link });
}

export async function referrers(ctx: RequestContext): Promise<void> {
  const { registry, route, url, res } = ctx;
  const subject = parseDigestParam(route.param);
  const artifactType = url.searchParams.get('artifactType') ?? undefined;
  const manifests = await registry.listReferrers(route.name, subject, artifactType === '' ? undefined : artifactType);
  const headers: Record<string, string> = { 'Content-Type': MediaType.ociIndex };
  if (artifactType !== undefined && artifactType !== '') headers['OCI-Filters-Applied'] = 'artifactType';
  sendJson(res, 200, { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }, headers);
}

/** GET and POST /token (Docker token protocol; the form of POST is OAuth2's). */
export async function token(ctx: RequestContext): Promise<void> {
  const { req, res, url, auth } = ctx;
  if (req.method === 'POST') {
    const form = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8'));
    sendJson(res, 200, await auth.tokenPost(form), { 'Cache-Control': 'no-store' });
    return;
  }
  sendJson(res, 200, await auth.tokenGet(req, url.searchParams), { 'Cache-Control': 'no-store' });
}
