/** A small HTTP client for tests: exact control over methods, headers and bodies. */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json<T = unknown>(): T;
  text(): string;
}

export interface RequestOptions {
  headers?: Record<string, string | number>;
  body?: Buffer | string | Readable;
  /** For https with a self-signed certificate. */
  ca?: Buffer;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export function request(method: string, url: string, options: RequestOptions = {}): Promise<Response> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(
      u,
      {
        method,
        headers: options.headers ?? {},
        ...(secure ? { ca: options.ca } : { agent }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: <T>() => JSON.parse(body.toString('utf8')) as T,
            text: () => body.toString('utf8'),
          });
        });
      },
    );
    req.on('error', reject);
    const body = options.body;
    if (body === undefined) req.end();
    else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
    else body.pipe(req);
  });
}

/** Resolves a Location header against the registry's base URL. */
export function resolveLocation(base: string, location: string | undefined): string {
  if (location === undefined) throw new Error('response has no Location header');
  return new URL(location, base).toString();
}

export function withQuery(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}
