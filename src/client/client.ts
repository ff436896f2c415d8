/**
 * A typed Engine API client over a UNIX socket (or TCP): used by the berth
 * CLI and by tests. Speaks API 1.44 on versioned paths.
 */
import http from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { forEachJsonLine } from './json-lines.js';

export const CLIENT_API_VERSION = '1.44';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined | string[]>;
  body?: unknown;
  rawBody?: Readable | Buffer;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface Target {
  socketPath?: string;
  host?: string;
  port?: number;
}

export function parseHost(host: string): Target {
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  if (host.startsWith('/')) return { socketPath: host };
  const m = /^(?:tcp|http):\/\/([^:/]+)(?::(\d+))?\/?$/.exec(host);
  if (m) return { host: m[1], port: m[2] ? Number(m[2]) : 2375 };
  throw new Error(`invalid host: ${host}`);
}

function queryString(q: RequestOptions['query']): string {
  if (!q) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) params.append(k, x);
    else params.set(k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export class EngineClient {
  readonly target: Target;
  private readonly agent: http.Agent;

  constructor(
    readonly host: string,
    readonly apiVersion = CLIENT_API_VERSION,
  ) {
    this.target = parseHost(host);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  }

  close(): void {
    this.agent.destroy();
  }

  private path(p: string, o: RequestOptions): string {
    return `/v${this.apiVersion}${p}${queryString(o.query)}`;
  }

  /** A raw request; resolves with the response once headers arrive. */
  raw(method: string, p: string, o: RequestOptions = {}): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      let body: Buffer | undefined;
      if (o.body !== undefined) {
        body = Buffer.from(JSON.stringify(o.body));
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = String(body.length);
      } else if (Buffer.isBuffer(o.rawBody)) {
        body = o.rawBody;
        headers['Content-Length'] = String(body.length);
      }
      const options: http.RequestOptions & { servername: string } = {
        ...this.target,
        // no TLS: skip the agent's servername computation (its IPv6 regex costs ~6 ms per process)
        servername: '',
        agent: this.agent,
        method,
        path: this.path(p, o),
        headers,
        signal: o.signal,
      };
      const req = http.request(options);
      req.on('response', resolve);
      req.on('error', reject);
      if (body) req.end(body);
      else if (o.rawBody && !Buffer.isBuffer(o.rawBody)) o.rawBody.pipe(req);
      else req.end();
    });
  }

  /** A request whose JSON answer (or error) is returned. */
  async json<T = unknown>(method: string, p: string, o: RequestOptions = {}): Promise<T> {
    const res = await this.raw(method, p, o);
    const data = await readAll(res);
    const status = res.statusCode ?? 0;
    if (status >= 400) throw new ApiError(status, errorText(data, status));
    if (status === 204 || status === 304 || data.length === 0) return undefined as T;
    return JSON.parse(data.toString('utf8')) as T;
  }

  /** Like json() but tolerant of 304 (already started/stopped); returns the status. */
  async call(method: string, p: string, o: RequestOptions = {}): Promise<number> {
    const res = await this.raw(method, p, o);
    const data = await readAll(res);
    const status = res.statusCode ?? 0;
    if (status >= 400) throw new ApiError(status, errorText(data, status));
    return status;
  }

  /** A streaming response (logs, events, progress); throws on an error status. */
  async stream(method: string, p: string, o: RequestOptions = {}): Promise<http.IncomingMessage> {
    const res = await this.raw(method, p, o);
    const status = res.statusCode ?? 0;
    if (status >= 400) throw new ApiError(status, errorText(await readAll(res), status));
    return res;
  }

  /** Upgrade to a raw bidirectional stream (attach, exec start). */
  hijack(method: string, p: string, o: RequestOptions = {}): Promise<{ socket: Duplex; head: Buffer; contentType: string }> {
    return new Promise((resolve, reject) => {
      const body = o.body !== undefined ? Buffer.from(JSON.stringify(o.body)) : undefined;
      const headers: Record<string, string> = { Connection: 'Upgrade', Upgrade: 'tcp', ...(o.headers ?? {}) };
      if (body) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = String(body.length);
      }
      const options: http.RequestOptions & { servername: string } = { ...this.target, servername: '', method, path: this.path(p, o), headers, agent: false };
      const req = http.request(options);
      req.on('upgrade', (res, socket, head) => resolve({ socket, head, contentType: String(res.headers['content-type'] ?? '') }));
      req.on('response', async (res) => {
        const data = await readAll(res);
        const status = res.statusCode ?? 0;
        reject(new ApiError(status, status >= 400 ? errorText(data, status) : `unexpected status ${status} for ${p}`));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Parses a JSON-lines progress stream; throws on an error line. */
  async progress(res: Readable, onMessage: (m: Record<string, unknown>) => void): Promise<void> {
    let failure: string | undefined;
    await forEachJsonLine<Record<string, unknown>>(res, (m) => {
      if (m.error || m.errorDetail) failure = String(m.error ?? (m.errorDetail as { message?: string }).message);
      else onMessage(m);
    });
    if (failure !== undefined) throw new ApiError(500, failure);
  }
}

function errorText(data: Buffer, status: number): string {
  const text = data.toString('utf8');
  try {
    const obj = JSON.parse(text) as { message?: string };
    if (obj.message) return obj.message;
  } catch {
    // not JSON
  }
  return text.trim() || `request failed with status ${status}`;
}
