/** /images/* routes over an ImagesBackend (ImageService satisfies it). */
import type { Readable } from 'node:stream';
import { invalidArgument, notImplemented } from '../../core/errdefs/index.js';
import { Filters } from '../../core/filters.js';
import { parseReference } from '../../core/images/reference.js';
import { applyChanges } from '../../core/images/changes.js';
import type { Router } from '../router.js';
import { type DistributionBackend, LazyProgress, registryAuth } from './distribution.js';

export interface ImagesBackend {
  list(filters: Filters, all: boolean, apiVersion: number): Promise<unknown[]>;
  inspect(name: string, apiVersion: number): Promise<Record<string, unknown>>;
  history(name: string): Promise<unknown[]>;
  tag(source: string, repo: string, tag?: string): Promise<void>;
  remove(name: string, o: { force?: boolean; noprune?: boolean }): Promise<unknown[]>;
  prune(filters: Filters): Promise<unknown>;
  importImage(
    body: Readable,
    o: { repo?: string; tag?: string; changes?: string[]; message?: string; platform?: string },
    onProgress?: (bytes: number) => void,
  ): Promise<{ id: string }>;
}

export function imageRoutes(router: Router, b: ImagesBackend, dist?: DistributionBackend): void {
  router.get('/images/json', async (ctx) => {
    const filters = Filters.parse(ctx.str('filters'), ['dangling', 'label', 'before', 'since', 'reference', 'until']);
    const legacy = ctx.str('filter');
    const f = legacy ? Filters.of({ ...filters.toJSON(), reference: [legacy] }) : filters;
    ctx.json(200, await b.list(f, ctx.bool('all'), ctx.apiVersion));
  });

  router.post('/images/create', async (ctx) => {
    const fromSrc = ctx.str('fromSrc');
    const fromImage = ctx.str('fromImage');
    if (fromSrc === undefined && fromImage === undefined) throw invalidArgument('either fromSrc or fromImage must be given');
    if (fromImage !== undefined) {
      if (!dist) throw notImplemented('pulling images from a registry is not available in this build of berthd');
      // validate before the stream starts, so bad input gets a real status
      const ref = dist.pullReference(fromImage, ctx.str('tag') || undefined);
      const platform = dist.parsePlatform(ctx.str('platform') || undefined);
      const auth = registryAuth(ctx);
      const progress = new LazyProgress(ctx);
      await progress.run(() => dist.pull(ref, { platform, auth, progress: progress.write }));
      return;
    }
    if (fromSrc !== '-') throw invalidArgument('importing from a URL is not supported: send the archive in the request body (fromSrc=-)');
    const changes = ctx.query.getAll('changes').flatMap((c) => c.split('\n'));
    // Validate everything we can before the stream starts, so errors get a real status.
    const options = {
      repo: ctx.str('repo') || undefined,
      tag: ctx.str('tag') || undefined,
      changes,
      message: ctx.str('message') || undefined,
      platform: ctx.str('platform') || undefined,
    };
    if (options.repo) parseReference(options.repo);
    applyChanges({}, changes);
    const progress = ctx.progressStream();
    let reported = 0;
    try {
      const img = await b.importImage(ctx.req, options, (bytes) => {
        if (bytes - reported >= 1 << 22) {
          reported = bytes;
          progress.write({ status: 'Importing', progressDetail: { current: bytes }, progress: `${(bytes / 1e6).toFixed(1)}MB` });
        }
      });
      progress.write({ status: img.id });
    } catch (err) {
      progress.error(err);
    }
    progress.end();
  });

  router.post('/images/prune', async (ctx) => {
    ctx.json(200, await b.prune(Filters.parse(ctx.str('filters'), ['dangling', 'until', 'label', 'label!'])));
  });

  router.get('/images/:name*/json', async (ctx) => {
    ctx.json(200, await b.inspect(ctx.params.name, ctx.apiVersion));
  });

  router.get('/images/:name*/history', async (ctx) => {
    ctx.json(200, await b.history(ctx.params.name));
  });

  router.post('/images/:name*/tag', async (ctx) => {
    const repo = ctx.str('repo');
    if (!repo) throw invalidArgument('repository name must have at least one component');
    await b.tag(ctx.params.name, repo, ctx.str('tag') || undefined);
    ctx.empty(201);
  });

  router.delete('/images/:name*', async (ctx) => {
    ctx.json(200, await b.remove(ctx.params.name, { force: ctx.bool('force'), noprune: ctx.bool('noprune') }));
  });
}
