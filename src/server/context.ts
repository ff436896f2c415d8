/**
 * One request as handlers see it: parameters, body, and the response forms
 * the Engine API uses (JSON, empty, JSON-lines progress, hijacked raw
 * stream). Works for plain requests and for Upgrade requests alike.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { PassThrough } from 'node:stream';
import { commonHeaders } from '../api/version.js';
import { invalidArgument } from '../core/errdefs/index.js';
import { errorMessage } from '../core/errdefs/index.js';
import type { Logger } from '../util/log.js';

const MAX_JSON_BODY = 16 << 20;

export interface HijackedStream {
  /** Raw bytes to the client. */
  write(data: Buffer): void;
  /** Ends our side once written data is flushed. */
  end(): void;
  /** Bytes from the client (stdin), after the request body. */
  input: PassThrough;
  /** Fires once when the client goes away or we end. */
  onClose(cb: () => void): void;
  readonly closed: boolean;
}

export class ProgressStream {
  private ended = false;
  constructor(private readonly ctx: RequestContext) {}

  write(obj: Record<string, unknown>): void {
    if (this.ended) return;
    this.ctx.res!.write(JSON.stringify(obj) + '\r\n');
  }

  error(err: unknown): void {
    const message = errorMessage(err);
    this.write({ errorDetail: { message }, error: message });
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.ctx.res!.end();
  }
}

export class RequestContext {
  readonly query: URLSearchParams;
  params: Record<string, string> = {};
  private readonly abort = new AbortController();
  private hijacked: HijackedStream | undefined;
  private bodyText: Promise<string> | undefined;
  private progress: ProgressStream | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse | undefined,
    readonly socket: Duplex | undefined,
    private head: Buffer | undefined,
    readonly path: string,
    rawQuery: string,
    readonly apiVersion: number,
    readonly log: Logger,
  ) {
    this.query = new URLSearchParams(rawQuery);
    const onGone = (): void => this.abort.abort();
    if (res) {
      res.on('close', onGone);
    } else if (socket) {
      socket.on('close', onGone);
    }
  }

  get isUpgrade(): boolean {
    return this.res === undefined;
  }

  /** Aborted when the client disconnects. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get responded(): boolean {
    if (this.hijacked) return true;
    return this.res ? this.res.headersSent : true;
  }

  // ---- parameters ----------------------------------------------------------

  str(name: string): string | undefined {
    const v = this.query.get(name);
    return v === null ? undefined : v;
  }

  /** Docker's query booleans: "", 0, no, false, none are false. */
  bool(name: string, fallback = false): boolean {
    const v = this.query.get(name);
    if (v === null) return fallback;
    return !['', '0', 'no', 'false', 'none'].includes(v.trim().toLowerCase());
  }

  int(name: string): number | undefined {
    const v = this.query.get(name);
    if (v === null || v === '') return undefined;
    if (!/^-?\d+$/.test(v.trim())) throw invalidArgument(`invalid value for ${name}: ${JSON.stringify(v)}`);
    return parseInt(v, 10);
  }

  // ---- body ----------------------------------------------------------------

  /** The request body as text (JSON bodies). For Upgrade requests it is read from the socket. */
  body(limit = MAX_JSON_BODY): Promise<string> {
    if (!this.bodyText) this.bodyText = this.res ? this.readRequestBody(limit) : this.readUpgradeBody(limit);
    return this.bodyText;
  }

  private readRequestBody(limit: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      this.req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > limit) {
          reject(invalidArgument('request body too large'));
          this.req.destroy();
          return;
        }
        chunks.push(c);
      });
      this.req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      this.req.on('error', reject);
    });
  }

  /**
   * In an Upgrade request Node hands us the socket; the body (exec start's
   * JSON) arrives first, in `head` and then on the socket. We take exactly
   * Content-Length bytes; what follows is stdin.
   */
  private readUpgradeBody(limit: number): Promise<string> {
    const length = parseInt(this.req.headers['content-length'] ?? '0', 10) || 0;
    if (length > limit) return Promise.reject(invalidArgument('request body too large'));
    const head = this.head ?? Buffer.alloc(0);
    if (head.length >= length) {
      this.head = head.subarray(length);
      return Promise.resolve(head.subarray(0, length).toString('utf8'));
    }
    const socket = this.socket!;
    return new Promise((resolve, reject) => {
      let buf = head;
      const onData = (c: Buffer): void => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= length) {
          socket.off('data', onData);
          socket.off('end', onEnd);
          socket.pause();
          this.head = buf.subarray(length);
          resolve(buf.subarray(0, length).toString('utf8'));
        }
      };
      const onEnd = (): void => reject(invalidArgument('request body ended early'));
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.resume();
    });
  }

  // ---- responses -----------------------------------------------------------

  json(status: number, value: unknown, headers: Record<string, string> = {}): void {
    const body = JSON.stringify(value) + '\n';
    if (this.res) {
      this.res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
      this.res.end(this.req.method === 'HEAD' ? undefined : body);
    } else {
      this.writeRawResponse(status, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), ...headers }, body);
    }
  }

  empty(status = 204, headers: Record<string, string> = {}): void {
    if (this.res) {
      this.res.writeHead(status, headers);
      this.res.end();
    } else {
      this.writeRawResponse(status, { 'Content-Length': '0', ...headers }, '');
    }
  }

  text(status: number, text: string, headers: Record<string, string> = {}): void {
    if (this.res) {
      this.res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
      this.res.end(this.req.method === 'HEAD' ? undefined : text);
    } else {
      this.writeRawResponse(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), ...headers }, text);
    }
  }

  /** A response on a socket Node handed over for Upgrade: HTTP written by hand. */
  private writeRawResponse(status: number, headers: Record<string, string>, body: string): void {
    const socket = this.socket!;
    const lines = [`HTTP/1.1 ${status} ${statusText(status)}`];
    for (const [k, v] of Object.entries({ ...commonHeaders(), ...headers })) lines.push(`${k}: ${v}`);
    lines.push('Connection: close');
    socket.end(lines.join('\r\n') + '\r\n\r\n' + body);
  }

  /** Headers now, body later: /wait must not delay its headers. */
  beginJson(status = 200): ServerResponse {
    const res = this.res!;
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    return res;
  }

  /** A JSON-lines progress stream (pull, push, import, load, build). */
  progressStream(): ProgressStream {
    if (!this.progress) {
      this.res!.writeHead(200, { 'Content-Type': 'application/json' });
      this.res!.flushHeaders();
      this.progress = new ProgressStream(this);
    }
    return this.progress;
  }

  /**
   * Switches the connection to a raw stream: 101 UPGRADED on an Upgrade
   * request, else a 200 whose body is the stream.
   */
  hijack(contentType: string): HijackedStream {
    if (this.hijacked) return this.hijacked;
    const input = new PassThrough();
    const closeCallbacks: (() => void)[] = [];
    let closed = false;
    const fireClose = (): void => {
      if (closed) return;
      closed = true;
      for (const cb of closeCallbacks.splice(0)) cb();
    };

    // A body nobody read (dockerode sends attach's options as JSON) is not
    // stdin: Docker drops it when it hijacks. Skip Content-Length bytes.
    let unreadBody = this.bodyText ? 0 : parseInt(this.req.headers['content-length'] ?? '0', 10) || 0;
    const feed = (c: Buffer): void => {
      if (unreadBody > 0) {
        const n = Math.min(unreadBody, c.length);
        unreadBody -= n;
        c = c.subarray(n);
      }
      if (c.length) input.write(c);
    };

    if (!this.res) {
      const socket = this.socket!;
      const headers = { ...commonHeaders(), 'Content-Type': contentType, Connection: 'Upgrade', Upgrade: 'tcp' };
      const lines = ['HTTP/1.1 101 UPGRADED', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      socket.write(lines.join('\r\n') + '\r\n\r\n');
      if (this.head && this.head.length) feed(this.head);
      this.head = undefined;
      // The client half-closes when its stdin ends: that is end of input
      // only; we keep writing output until the container is done.
      socket.on('data', feed);
      socket.on('end', () => input.end());
      socket.on('error', () => fireClose());
      socket.on('close', () => {
        input.end();
        fireClose();
      });
      socket.resume();
      this.hijacked = {
        write: (data) => {
          if (!closed && socket.writable) socket.write(data);
        },
        end: () => {
          if (closed) return;
          socket.end(() => socket.destroy());
          fireClose();
        },
        input,
        onClose: (cb) => (closed ? cb() : closeCallbacks.push(cb)),
        get closed() {
          return closed;
        },
      };
    } else {
      const res = this.res;
      res.writeHead(200, { 'Content-Type': contentType });
      res.flushHeaders();
      this.req.on('data', feed);
      this.req.on('end', () => input.end());
      res.on('close', () => {
        input.end();
        fireClose();
      });
      this.hijacked = {
        write: (data) => {
          if (!closed) res.write(data);
        },
        end: () => {
          if (closed) return;
          res.end();
          fireClose();
        },
        input,
        onClose: (cb) => (closed ? cb() : closeCallbacks.push(cb)),
        get closed() {
          return closed;
        },
      };
    }
    return this.hijacked;
  }
}

function statusText(status: number): string {
  return (
    { 200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable' }[status] ??
    'Unknown'
  );
}
