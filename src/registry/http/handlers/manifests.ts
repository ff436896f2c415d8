/**
 * Manifest endpoints: GET/HEAD serve the stored bytes with the Content-Type
 * they were pushed with; PUT stores byte-exact (413 above the size limit) and
 * answers `Docker-Content-Digest` (and `OCI-Subject` for referrers); DELETE
 * by digest or by tag.
 */
import { parseReference } from '../../names.js';
import type { RequestContext } from '../context.js';
import { readBody, sendEmpty } from '../respond.js';

export async function getManifest(ctx: RequestContext): Promise<void> {
  const { registry, route, req, res } = ctx;
  const manifest = await registry.getManifest(route.name, parseReference(route.param));
  res.writeHead(200, {
    'Content-Type': manifest.mediaType,
    'Content-Length': manifest.bytes.length,
    'Docker-Content-Digest': manifest.digest,
    ETag: `"${manifest.digest}"`,
  });
  res.end(req.method === 'HEAD' ? undefined : manifest.bytes);
}

export async function putManifest(ctx: RequestContext): Promise<void> {
  const { registry, route, req, res } = ctx;
  const ref = parseReference(route.param);
  const bytes = await readBody(req, registry.options.maxManifestBytes);
  const { digest, subject } = await registry.putManifest(route.name, ref, bytes, req.headers['content-type']);
  const headers: Record<string, string> = { Location: `/v2/${route.name}/manifests/${digest}`, 'Docker-Content-Digest': digest };
  if (subject !== undefined) headers['OCI-Subject'] = subject;
  sendEmpty(res, 201, headers);
}

export async function deleteManifest(ctx: RequestContext): Promise<void> {
  await ctx.registry.deleteManifest(ctx.route.name, parseReference(ctx.route.param));
  sendEmpty(ctx.res, 202);
}
