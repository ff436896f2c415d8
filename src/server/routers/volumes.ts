/** /volumes/* routes over a VolumesBackend (VolumeService + who uses what). */
import { decodeBody } from '../../api/decode.js';
import { Filters } from '../../core/filters.js';
import type { Router } from '../router.js';

export interface VolumesBackend {
  create(body: { Name?: string; Driver?: string; DriverOpts?: Record<string, string>; Labels?: Record<string, string> }): Promise<Record<string, unknown>>;
  list(filters: Filters): Record<string, unknown>[];
  inspect(name: string): Record<string, unknown>;
  remove(name: string, force: boolean): Promise<void>;
  prune(filters: Filters): Promise<unknown>;
}

export function volumeRoutes(router: Router, b: VolumesBackend): void {
  router.get('/volumes', async (ctx) => {
    const filters = Filters.parse(ctx.str('filters'), ['name', 'driver', 'label', 'dangling']);
    ctx.json(200, { Volumes: b.list(filters), Warnings: [] });
  });

  router.post('/volumes/create', async (ctx) => {
    const body = decodeBody<{ Name?: string; Driver?: string; DriverOpts?: Record<string, string>; Labels?: Record<string, string> }>(
      await ctx.body(),
      { Name: 'string', Driver: 'string', DriverOpts: 'stringMap', Labels: 'stringMap', ClusterVolumeSpec: 'object' },
      'VolumeCreateRequest',
    );
    ctx.json(201, await b.create(body));
  });

  router.post('/volumes/prune', async (ctx) => {
    ctx.json(200, await b.prune(Filters.parse(ctx.str('filters'), ['label', 'label!', 'all'])));
  });

  router.get('/volumes/:name', async (ctx) => {
    ctx.json(200, b.inspect(ctx.params.name));
  });

  router.delete('/volumes/:name', async (ctx) => {
    await b.remove(ctx.params.name, ctx.bool('force'));
    ctx.empty(204);
  });
}
