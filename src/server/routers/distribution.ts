/**
 * Registry and archive routes: POST /auth, POST /images/{name}/push,
 * GET /images/get and /images/{name}/get (save), POST /images/load and
 * GET /containers/{id}/export, over a DistributionBackend. Pull lives in
 * images.ts (POST /images/create) and uses the same backend.
 *
 * Progress streams start lazily: an error before the first message (unknown
 * registry, 401, 404 tag) gets a real HTTP status, as dockerd does.
 */
import type { Readable } from 'node:stream';
import type { Reference } from '../../core/images/reference.js';
import type { Platform } from '../../core/images/types.js';
import { invalidArgument } from '../../core/errdefs/index.js';
import { parseReference } from '../../core/images/reference.js';
import type { AuthConfig } from '../../engine/distribution/auth.js';
import { decodeRegistryAuth } from '../../engine/distribution/auth.js';
import type { ProgressMessage } from '../../engine/distribution/progress.js';
import type { RequestContext } from '../context.js';
import type { Router } from '../router.js';

export interface DistributionBackend {
  pullReference(fromImage: string, tag: string | undefined): Reference;
  parsePlatform(text: string | undefined): Platform | undefined;
  pull(ref: Reference, o: { platform?: Platform; auth?: AuthConfig; progress: (m: ProgressMessage) => void; signal?: AbortSignal }): Promise<unknown>;
  push(ref: Reference, o: { auth?: AuthConfig; progress: (m: ProgressMessage) => void; signal?: AbortSignal }): Promise<unknown>;
  login(auth: AuthConfig): Promise<{ Status: string; IdentityToken: string }>;
  resolveForSave(names: string[]): Promise<unknown[]>;
  save(items: unknown[], out: NodeJS.WritableStream): Promise<void>;
  load(body: Readable, progress: (m: ProgressMessage) => void): Promise<string[]>;
  exportContainer(id: string): Promise<Readable>;
}

/** A progress stream whose headers go out with the first message. */
export class LazyProgress {
  private started = false;
  constructor(private readonly ctx: RequestContext) {}

  readonly write = (m: ProgressMessage): void => {
    if (this.ctx.signal.aborted) return;
    this.started = true;
    this.ctx.progressStream().write(m as Record<string, unknown>);
  };

  /** Runs the operation; errors before any output are thrown (real status), later ones go in the stream. */
  async run(op: () => Promise<unknown>): Promise<void> {
    try {
      await op();
    } catch (err) {
      if (!this.started) throw err;
      if (!this.ctx.signal.aborted) this.ctx.progressStream().error(err);
    }
    if (!this.started) this.ctx.progressStream();
    this.ctx.progressStream().end();
  }
}

export function registryAuth(ctx: RequestContext): AuthConfig | undefined {
  const header = ctx.req.headers['x-registry-auth'];
  return decodeRegistryAuth(Array.isArray(header) ? header[0] : header);
}

export function distributionRoutes(router: Router, b: DistributionBackend): void {
  router.post('/auth', async (ctx) => {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse((await ctx.body()) || '{}') as Record<string, unknown>;
    } catch {
      throw invalidArgument('invalid JSON in the request body');
    }
    const str = (k: string): string | undefined => (typeof body[k] === 'string' && body[k] !== '' ? (body[k] as string) : undefined);
    ctx.json(200, await b.login({ username: str('username'), password: str('password'), identitytoken: str('identitytoken'), serveraddress: str('serveraddress') }));
  });

  router.post('/images/:name*/push', async (ctx) => {
    let ref = parseReference(ctx.params.name);
    const tag = ctx.str('tag');
    if (tag) {
      if (ref.tag || ref.digest) throw invalidArgument(`invalid reference: both ${ctx.params.name} and tag ${tag} given`);
      ref = parseReference(`${ctx.params.name}:${tag}`);
    }
    if (ref.digest) throw invalidArgument('cannot push a digest reference');
    const auth = registryAuth(ctx);
    const progress = new LazyProgress(ctx);
    await progress.run(() => b.push(ref, { auth, progress: progress.write }));
  });

  const save = async (ctx: RequestContext, names: string[]): Promise<void> => {
    const items = await b.resolveForSave(names);
    const res = ctx.res!;
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    try {
      await b.save(items, res);
    } catch (err) {
      // headers are gone: cutting the stream short is the only signal left
      ctx.log.warn('save failed', { error: (err as Error).message });
      res.destroy(err as Error);
    }
  };
  router.get('/images/get', async (ctx) => save(ctx, ctx.query.getAll('names').flatMap((n) => n.split(',')).filter(Boolean)));
  router.get('/images/:name*/get', async (ctx) => save(ctx, [ctx.params.name]));

  router.post('/images/load', async (ctx) => {
    const progress = new LazyProgress(ctx);
    const quiet = ctx.bool('quiet');
    await progress.run(() => b.load(ctx.req, (m) => (!quiet || m.stream ? progress.write(m) : undefined)));
  });

  router.get('/containers/:id/export', async (ctx) => {
    const stream = await b.exportContainer(ctx.params.id);
    const res = ctx.res!;
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    stream.on('error', (err) => res.destroy(err));
    ctx.signal.addEventListener('abort', () => stream.destroy(), { once: true });
    stream.pipe(res);
  });
}
