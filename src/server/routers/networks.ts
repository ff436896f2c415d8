/** /networks/* routes over a NetworksBackend (NetworkService + ContainerService). */
import type { Schema } from '../../api/decode.js';
import { decodeBody } from '../../api/decode.js';
import { endpointSettingsSchema, type EndpointSettings } from '../../api/types.js';
import { invalidArgument } from '../../core/errdefs/index.js';
import { Filters } from '../../core/filters.js';
import type { Router } from '../router.js';

export interface NetworksBackend {
  create(body: Record<string, unknown>): Promise<{ Id: string; Warning: string }>;
  list(filters: Filters): Record<string, unknown>[];
  inspect(id: string): Record<string, unknown>;
  remove(id: string): Promise<void>;
  prune(filters: Filters): Promise<unknown>;
  connect(network: string, container: string, endpoint: EndpointSettings): Promise<void>;
  disconnect(network: string, container: string, force: boolean): Promise<void>;
}

const createSchema: Schema = {
  Name: 'string',
  CheckDuplicate: 'boolean',
  Driver: 'string',
  Scope: 'string',
  Internal: 'boolean',
  Attachable: 'boolean',
  Ingress: 'boolean',
  EnableIPv6: 'boolean',
  IPAM: {
    object: {
      Driver: 'string',
      Config: { array: { object: { Subnet: 'string', IPRange: 'string', Gateway: 'string', AuxiliaryAddresses: 'stringMap' } } },
      Options: 'stringMap',
    },
  },
  Options: 'stringMap',
  Labels: 'stringMap',
};

export function networkRoutes(router: Router, b: NetworksBackend): void {
  router.get('/networks', async (ctx) => {
    ctx.json(200, b.list(Filters.parse(ctx.str('filters'), ['name', 'id', 'label', 'driver', 'type', 'scope', 'dangling'])));
  });

  router.post('/networks/create', async (ctx) => {
    ctx.json(201, await b.create(decodeBody(await ctx.body(), createSchema, 'NetworkCreateRequest')));
  });

  router.post('/networks/prune', async (ctx) => {
    ctx.json(200, await b.prune(Filters.parse(ctx.str('filters'), ['until', 'label', 'label!'])));
  });

  router.get('/networks/:id', async (ctx) => {
    ctx.json(200, b.inspect(ctx.params.id));
  });

  router.delete('/networks/:id', async (ctx) => {
    await b.remove(ctx.params.id);
    ctx.empty(204);
  });

  router.post('/networks/:id/connect', async (ctx) => {
    const body = decodeBody<{ Container?: string; EndpointConfig?: EndpointSettings }>(
      await ctx.body(),
      { Container: 'string', EndpointConfig: { object: endpointSettingsSchema } },
      'NetworkConnectRequest',
    );
    if (!body.Container) throw invalidArgument('container is required');
    await b.connect(ctx.params.id, body.Container, body.EndpointConfig ?? {});
    ctx.empty(200);
  });

  router.post('/networks/:id/disconnect', async (ctx) => {
    const body = decodeBody<{ Container?: string; Force?: boolean }>(await ctx.body(), { Container: 'string', Force: 'boolean' }, 'NetworkDisconnectRequest');
    if (!body.Container) throw invalidArgument('container is required');
    await b.disconnect(ctx.params.id, body.Container, body.Force ?? false);
    ctx.empty(200);
  });
}
