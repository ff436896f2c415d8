/**
 * Blob endpoints: GET/HEAD (with a single `Range`, 206), DELETE, and the
 * upload endpoints in all three shapes clients use: POST then one PATCH with
 * the whole body (docker, skopeo), POST then PUT with the body (containerd),
 * chunked PATCHes with Content-Range (416 out of order), plus the single
 * POST `?digest=` and cross-repository mount.
 */
import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { Digest } from '../../../core/images/digest.js';
import { ociError } from '../../errors.js';
import { checkRepositoryName, parseDigestParam } from '../../names.js';
import type { Upload } from '../../storage/upload-store.js';
import type { RequestContext } from '../context.js';
import { contentLength, hasBody, sendEmpty } from '../respond.js';

const EMPTY_DIGEST = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Bytes per read when serving a blob; two such buffers per download. */
const READ_CHUNK = 512 * 1024;

function blobLocation(name: string, digest: Digest): string {
  return `/v2/${name}/blobs/${digest}`;
}

function uploadHeaders(upload: Upload): Record<string, string | number> {
  return {
    Location: `/v2/${upload.name}/blobs/uploads/${upload.uuid}`,
    // No "bytes=" prefix: docker and the spec read `0-<last>`; an empty upload says 0-0.
    Range: `0-${Math.max(upload.size - 1, 0)}`,
    'Docker-Upload-UUID': upload.uuid,
  };
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n`; undefined to serve the whole blob (absent or multi-range). */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return undefined;
  const a = m[1] ?? '';
  const b = m[2] ?? '';
  if (a === '' && b === '') return undefined;
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(size - suffix, 0);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return undefined;
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

export async function getBlob(ctx: RequestContext): Promise<void> {
  const { registry, route, req, res } = ctx;
  const digest = parseDigestParam(route.param);
  const headers: Record<string, string | number> = {
    'Docker-Content-Digest': digest,
    'Content-Type': 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    ETag: `"${digest}"`,
    'Cache-Control': 'max-age=31536000',
  };
  if (req.method === 'HEAD') {
    const size = await registry.statBlob(route.name, digest);
    res.writeHead(200, { ...headers, 'Content-Length': size });
    res.end();
    return;
  }
  const { handle, size } = await registry.openBlob(route.name, digest);
  let range: ReturnType<typeof parseRange>;
  try {
    range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      await handle.close();
      sendEmpty(res, 416, { 'Content-Range': `bytes */${size}` });
      return;
    }
  } catch (err) {
    await handle.close();
    throw err;
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? size - 1;
  if (range !== undefined) {
    res.writeHead(206, { ...headers, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${size}` });
  } else {
    res.writeHead(200, { ...headers, 'Content-Length': size });
  }
  if (size === 0 || end < start) {
    await handle.close();
    res.end();
    return;
  }
  try {
    await sendFileRange(handle, start, end, res);
  } catch (err) {
    if (!res.writableFinished) res.destroy();
    ctx.log.debug('blob stream ended early', { digest, err: err as Error });
  } finally {
    await handle.close();
  }
}

/**
 * Streams bytes start..end (inclusive) of a file to the response through two
 * reused buffers: one is read into while the other is being sent, and a
 * buffer is reused only once the socket took it. Memory per download stays
 * at two buffers however many clients pull, and no garbage is made per chunk.
 */
async function sendFileRange(handle: FileHandle, start: number, end: number, res: ServerResponse): Promise<void> {
  const size = Math.min(READ_CHUNK, end - start + 1);
  const buffers = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
  const inFlight: (Promise<void> | undefined)[] = [undefined, undefined];
  const closed = new Promise<never>((_, reject) => res.once('close', () => reject(new Error('client went away'))));
  closed.catch(() => undefined);
  let position = start;
  let i = 0;
  while (position <= end) {
    if (inFlight[i] !== undefined) await Promise.race([inFlight[i], closed]);
    const buf = buffers[i]!;
    const { bytesRead } = await handle.read(buf, 0, Math.min(size, end - position + 1), position);
    if (bytesRead === 0) throw new Error('blob file is shorter than its size');
    position += bytesRead;
    inFlight[i] = new Promise<void>((resolve, reject) => {
      res.write(buf.subarray(0, bytesRead), (err) => (err ? reject(err) : resolve()));
    });
    inFlight[i]!.catch(() => undefined);
    i ^= 1;
  }
  await Promise.race([Promise.all(inFlight), closed]);
  await new Promise<void>((resolve) => res.end(resolve));
}

export async function deleteBlob(ctx: RequestContext): Promise<void> {
  const digest = parseDigestParam(ctx.route.param);
  await ctx.registry.deleteBlob(ctx.route.name, digest);
  sendEmpty(ctx.res, 202, { 'Docker-Content-Digest': digest });
}

/** POST /v2/<name>/blobs/uploads/: new upload, single-request upload, or mount. */
export async function startUpload(ctx: RequestContext): Promise<void> {
  const { registry, route, url, req, res } = ctx;
  const mount = url.searchParams.get('mount');
  const from = url.searchParams.get('from');
  if (mount !== null && from !== null) {
    const digest = parseDigestParam(mount, 'mount digest');
    const source = checkRepositoryName(from);
    // Mounting needs pull on the source; without it the client simply uploads.
    const allowed = ctx.auth.can(ctx.identity, { type: 'repository', name: source, actions: ['pull'] });
    if (allowed && (await registry.mountBlob(route.name, digest, source))) {
      sendEmpty(res, 201, { Location: blobLocation(route.name, digest), 'Docker-Content-Digest': digest });
      return;
    }
  }
  const digestParam = url.searchParams.get('digest');
  const digest = digestParam === null ? undefined : parseDigestParam(digestParam);
  // A single-request upload carries its body; `?digest=` without one (other than the
  // empty blob's) is answered like a plain POST, which the spec lets clients follow with PUT.
  if (digest !== undefined && (hasBody(req) || digest === EMPTY_DIGEST)) {
    const upload = await registry.startUpload(route.name);
    try {
      await registry.completeUpload(route.name, upload.uuid, digest, req, undefined, contentLength(req));
    } catch (err) {
      await registry.cancelUpload(route.name, upload.uuid).catch(() => undefined);
      throw err;
    }
    sendEmpty(res, 201, { Location: blobLocation(route.name, digest), 'Docker-Content-Digest': digest });
    return;
  }
  const upload = await registry.startUpload(route.name);
  sendEmpty(res, 202, uploadHeaders(upload));
}

/** `start-end` as the spec writes it; also `bytes start-end` and `bytes=start-end` seen in the wild. */
function parseContentRange(header: string | undefined): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (m === null) throw ociError('RANGE_INVALID', `invalid Content-Range ${JSON.stringify(header)}`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw ociError('RANGE_INVALID', `invalid Content-Range ${JSON.stringify(header)}`);
  return { start, end };
}

export async function uploadStatus(ctx: RequestContext): Promise<void> {
  const upload = await ctx.registry.getUpload(ctx.route.name, ctx.route.param);
  sendEmpty(ctx.res, 204, uploadHeaders(upload));
}

export async function patchUpload(ctx: RequestContext): Promise<void> {
  const { registry, route, req, res } = ctx;
  const range = parseContentRange(req.headers['content-range']);
  const length = range !== undefined ? range.end - range.start + 1 : contentLength(req);
  const declared = contentLength(req);
  if (range !== undefined && declared !== undefined && declared !== length) {
    throw ociError('RANGE_INVALID', `Content-Range covers ${length} bytes, Content-Length says ${declared}`);
  }
  const upload = await registry.appendUpload(route.name, route.param, req, range?.start, length);
  sendEmpty(res, 202, uploadHeaders(upload));
}

export async function putUpload(ctx: RequestContext): Promise<void> {
  const { registry, route, req, res, url } = ctx;
  const digest = parseDigestParam(url.searchParams.get('digest'));
  const range = parseContentRange(req.headers['content-range']);
  const withBody = hasBody(req);
  const length = range !== undefined ? range.end - range.start + 1 : contentLength(req);
  await registry.completeUpload(route.name, route.param, digest, withBody ? req : undefined, range?.start, withBody ? length : undefined);
  sendEmpty(res, 201, { Location: blobLocation(route.name, digest), 'Docker-Content-Digest': digest });
}

export async function cancelUpload(ctx: RequestContext): Promise<void> {
  await ctx.registry.cancelUpload(ctx.route.name, ctx.route.param);
  sendEmpty(ctx.res, 204);
}
