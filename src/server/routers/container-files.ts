/**
 * Routes that look into a container: its files (HEAD/GET/PUT archive, for
 * `docker cp`), its processes (top), its filesystem changes (diff) and its
 * resource usage (stats), over a ContainerFilesBackend.
 */
import type { Readable, Writable } from 'node:stream';
import { invalidArgument } from '../../core/errdefs/index.js';
import type { RequestContext } from '../context.js';
import type { Router } from '../router.js';
import { drainedOrClosed } from '../../util/streams.js';

export interface PathStatView {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

export interface ContainerFilesBackend {
  resolve(id: string): { id: string };
  statPath(id: string, path: string): Promise<PathStatView>;
  archive(id: string, path: string, begin: (stat: PathStatView) => Writable, signal: AbortSignal): Promise<void>;
  extract(id: string, path: string, body: Readable, options: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }): Promise<void>;
  top(id: string, psArgs: string): Promise<{ Titles: string[]; Processes: string[][] }>;
  changes(id: string): Promise<{ Path: string; Kind: number }[] | null>;
  stats(id: string, options: { stream: boolean; oneShot: boolean }, emit: (frame: object) => Promise<void> | void, signal: AbortSignal): Promise<void>;
}

const STAT_HEADER = 'X-Docker-Container-Path-Stat';

function statHeader(stat: PathStatView): string {
  return Buffer.from(JSON.stringify(stat)).toString('base64');
}

function pathParam(ctx: RequestContext): string {
  const p = ctx.str('path');
  if (!p) throw invalidArgument('bad parameter: path cannot be empty');
  return p;
}

export function containerFileRoutes(router: Router, b: ContainerFilesBackend): void {
  router.head('/containers/:id/archive', async (ctx) => {
    const stat = await b.statPath(ctx.params.id, pathParam(ctx));
    ctx.empty(200, { [STAT_HEADER]: statHeader(stat), 'Content-Type': 'application/json' });
  });

  router.get('/containers/:id/archive', async (ctx) => {
    const res = ctx.res!;
    await b.archive(
      ctx.params.id,
      pathParam(ctx),
      (stat) => {
        res.writeHead(200, { [STAT_HEADER]: statHeader(stat), 'Content-Type': 'application/x-tar' });
        return res;
      },
      ctx.signal,
    );
  });

  router.put('/containers/:id/archive', async (ctx) => {
    const p = pathParam(ctx);
    b.resolve(ctx.params.id);
    await b.extract(ctx.params.id, p, ctx.req, {
      noOverwriteDirNonDir: ctx.bool('noOverwriteDirNonDir'),
      copyUIDGID: ctx.bool('copyUIDGID'),
    });
    ctx.empty(200);
  });

  router.get('/containers/:id/top', async (ctx) => {
    ctx.json(200, await b.top(ctx.params.id, ctx.str('ps_args') ?? ''));
  });

  router.get('/containers/:id/changes', async (ctx) => {
    ctx.json(200, await b.changes(ctx.params.id));
  });

  router.get('/containers/:id/stats', async (ctx) => {
    const stream = ctx.bool('stream', true);
    const oneShot = ctx.bool('one-shot');
    if (oneShot && stream) throw invalidArgument('cannot have stream=true and one-shot=true');
    b.resolve(ctx.params.id); // 404 before any header goes out
    if (!stream) {
      let frame: object | undefined;
      await b.stats(ctx.params.id, { stream, oneShot }, (f) => void (frame = f), ctx.signal);
      ctx.json(200, frame);
      return;
    }
    const res = ctx.beginJson(200);
    await b.stats(
      ctx.params.id,
      { stream, oneShot },
      (f) => {
        if (res.write(JSON.stringify(f) + '\n')) return;
        return drainedOrClosed(res);
      },
      ctx.signal,
    );
    res.end();
  });
}
