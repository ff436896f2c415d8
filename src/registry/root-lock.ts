/**
 * One process owns a registry root at a time. Ownership is a listening Linux
 * abstract-namespace socket named after the root's device and inode: binding
 * is atomic, and the kernel releases it the moment the owner dies (kill -9
 * included), so there is no stale lock file to clean up.
 *
 * The same socket is the control channel: `berth registry gc` run beside a
 * serving registry asks the server to collect (online, no read-only window)
 * instead of touching the root itself. Requests must carry the key in
 * `<root>/control.key` (mode 0600), so only who can read the root may ask.
 */
import fsp from 'node:fs/promises';
import net from 'node:net';
import crypto from 'node:crypto';
import path from 'node:path';
import { BerthError, errnoCode, unavailable } from '../core/errdefs/index.js';
import { writeFileAtomic } from '../util/atomic-file.js';

export interface ControlRequest {
  op: 'gc';
  dryRun: boolean;
  key: string;
}

export type ControlHandler = (req: ControlRequest) => Promise<unknown>;

async function socketName(root: string): Promise<string> {
  const st = await fsp.stat(root);
  const id = crypto.createHash('sha256').update(`${st.dev}:${st.ino}`).digest('hex').slice(0, 32);
  return `\0berth-registry-${id}`;
}

function keyFile(root: string): string {
  return path.join(root, 'control.key');
}

export class RootLock {
  private constructor(
    private readonly server: net.Server,
    private readonly key: string,
  ) {}

  /** Takes ownership of `root` or throws Unavailable naming the reason. */
  static async acquire(root: string, handler?: ControlHandler): Promise<RootLock> {
    const name = await socketName(root);
    const key = crypto.randomBytes(24).toString('hex');
    const server = net.createServer((socket) => {
      void serveControl(socket, key, handler);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => {
        if (errnoCode(err) === 'EADDRINUSE') reject(unavailable(`registry root ${root} is in use by another berth registry process`));
        else reject(err);
      });
      server.listen(name, () => resolve());
    });
    server.unref();
    // Written after the lock is ours: a client reading an old key just gets refused.
    await writeFileAtomic(keyFile(root), key, 0o600);
    return new RootLock(server, key);
  }

  async release(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  get controlKey(): string {
    return this.key;
  }
}

async function serveControl(socket: net.Socket, key: string, handler: ControlHandler | undefined): Promise<void> {
  socket.setEncoding('utf8');
  let buffer = '';
  const reply = (value: unknown): void => {
    socket.end(JSON.stringify(value) + '\n');
  };
  socket.on('error', () => undefined);
  for await (const chunk of socket) {
    buffer += chunk as string;
    if (buffer.length > 64 * 1024) return reply({ ok: false, error: 'request too large' });
    const nl = buffer.indexOf('\n');
    if (nl < 0) continue;
    let req: ControlRequest;
    try {
      req = JSON.parse(buffer.slice(0, nl)) as ControlRequest;
    } catch {
      return reply({ ok: false, error: 'malformed request' });
    }
    const given = Buffer.from(String(req.key ?? ''));
    const want = Buffer.from(key);
    if (given.length !== want.length || !crypto.timingSafeEqual(given, want)) return reply({ ok: false, error: 'wrong control key' });
    if (handler === undefined || req.op !== 'gc') return reply({ ok: false, error: 'unsupported operation' });
    try {
      return reply({ ok: true, result: await handler(req) });
    } catch (err) {
      return reply({ ok: false, error: (err as Error).message });
    }
  }
}

/**
 * Asks the process owning `root` to run an operation. Returns undefined when
 * no process owns it (the caller may then take the lock itself).
 */
export async function requestOwner(root: string, op: 'gc', dryRun: boolean): Promise<unknown> {
  const name = await socketName(root);
  let key: string;
  const socket = await new Promise<net.Socket | undefined>((resolve, reject) => {
    const s = net.connect(name);
    s.once('connect', () => resolve(s));
    s.once('error', (err) => {
      const code = errnoCode(err);
      if (code === 'ECONNREFUSED' || code === 'ENOENT') resolve(undefined);
      else reject(err);
    });
  });
  if (socket === undefined) return undefined;
  try {
    key = (await fsp.readFile(keyFile(root), 'utf8')).trim();
  } catch (err) {
    socket.destroy();
    throw new BerthError('Forbidden', `cannot read ${keyFile(root)}: ${(err as Error).message}`);
  }
  socket.setEncoding('utf8');
  socket.write(JSON.stringify({ op, dryRun, key } satisfies ControlRequest) + '\n');
  let text = '';
  for await (const chunk of socket) text += chunk as string;
  const answer = JSON.parse(text) as { ok: boolean; result?: unknown; error?: string };
  if (!answer.ok) throw unavailable(`the serving registry refused: ${answer.error ?? 'unknown error'}`);
  return answer.result;
}
