/**
 * Writing responses and reading bounded request bodies. Every registry
 * response carries `Docker-Distribution-API-Version` (clients check it on
 * `/v2/`); errors use the OCI JSON body via the one mapping in errors.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { payloadTooLarge, toHttpError, type HttpError } from '../errors.js';

export const API_VERSION_HEADER = 'Docker-Distribution-API-Version';
export const API_VERSION = 'registry/2.0';

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string | number> = {}): void {
  res.writeHead(status, { ...headers, 'Content-Length': 0 });
  res.end();
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string | number> = {}, head = false): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers, 'Content-Length': body.length });
  res.end(head ? undefined : body);
}

/** Writes an error; when headers already went out the connection is cut instead (the body is already wrong). */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown): HttpError {
  const mapped = toHttpError(err);
  if (res.headersSent) {
    res.destroy();
    return mapped;
  }
  const body = Buffer.from(JSON.stringify(mapped.body));
  res.writeHead(mapped.status, { ...mapped.headers, 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
  return mapped;
}

/** Reads a whole body of at most `limit` bytes; 413 (before reading) when Content-Length says more. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) throw payloadTooLarge(`manifest of ${declared} bytes exceeds the limit of ${limit}`, limit);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) throw payloadTooLarge(`manifest exceeds the limit of ${limit} bytes`, limit);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

export function contentLength(req: IncomingMessage): number | undefined {
  const v = req.headers['content-length'];
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** Whether a request carries a body (a Content-Length above 0, or chunked encoding). */
export function hasBody(req: IncomingMessage): boolean {
  const length = contentLength(req);
  if (length !== undefined) return length > 0;
  return req.headers['transfer-encoding'] !== undefined;
}
