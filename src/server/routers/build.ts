/**
 * POST /build (Docker's classic builder protocol) and /build/prune; the
 * BuildKit endpoints answer with how to use the classic builder instead.
 * Everything that can be checked before the build starts (tags, options,
 * the context, the Dockerfile's syntax) is an HTTP error; after that,
 * errors go into the JSON stream as the docker CLI expects.
 */
import type { Readable } from 'node:stream';
import { invalidArgument, notImplemented } from '../../core/errdefs/index.js';
import { parseReference, withDefaultTag, type Reference } from '../../core/images/reference.js';
import type { BuildOptions } from '../../engine/build/builder.js';
import type { AuthConfig } from '../../engine/distribution/auth.js';
import { errorMessage } from '../../core/errdefs/index.js';
import type { RequestContext } from '../context.js';
import type { Router } from '../router.js';

export interface BuildBackend {
  /** Receives the context and parses the Dockerfile; the returned run() streams the build. */
  prepare(
    body: Readable,
    options: BuildOptions,
    signal: AbortSignal,
  ): Promise<{
    run(out: { stream(text: string): void; aux(v: Record<string, unknown>): void; progress(m: Record<string, unknown>): void }): Promise<{ id: string }>;
    discard(): Promise<void>;
  }>;
  prune(all: boolean): Promise<{ CachesDeleted: string[]; SpaceReclaimed: number }>;
}

const BUILDKIT_MESSAGE =
  'BuildKit is not supported by berthd: use the classic builder (DOCKER_BUILDKIT=0 docker build ..., or berth build)';

function jsonMap(ctx: RequestContext, name: string): Record<string, string | null> {
  const text = ctx.str(name);
  if (!text) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw invalidArgument(`${name} is not valid JSON`);
  }
  if (v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v as object).some((x) => x !== null && typeof x !== 'string')) {
    throw invalidArgument(`${name} must be a JSON object of strings`);
  }
  return v as Record<string, string | null>;
}

function buildOptions(ctx: RequestContext): BuildOptions {
  if (ctx.str('remote')) throw invalidArgument('remote build contexts (URLs, git repositories) are not supported by berthd: send the context as a tar');
  if (ctx.str('version') === '2') throw notImplemented(BUILDKIT_MESSAGE);
  const tags: Reference[] = ctx.query.getAll('t').filter(Boolean).map((t) => {
    const ref = parseReference(t);
    if (ref.digest) throw invalidArgument(`invalid reference format: ${t}: a build cannot be tagged with a digest`);
    return withDefaultTag(ref);
  });
  const labels = jsonMap(ctx, 'labels');
  const num = (name: string): number | undefined => {
    const v = ctx.int(name);
    return v === undefined || v === 0 ? undefined : v;
  };
  let extraHosts: string[] = [];
  const hostsText = ctx.str('extrahosts');
  if (hostsText) extraHosts = hostsText.split(',').filter(Boolean);
  return {
    dockerfile: ctx.str('dockerfile') || '',
    tags,
    buildArgs: jsonMap(ctx, 'buildargs'),
    labels: Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, v ?? ''])),
    noCache: ctx.bool('nocache'),
    pull: ctx.bool('pull'),
    target: ctx.str('target') || undefined,
    quiet: ctx.bool('q'),
    rm: ctx.str('rm') === undefined ? true : ctx.bool('rm'),
    forceRm: ctx.bool('forcerm'),
    networkMode: ctx.str('networkmode') || undefined,
    resources: {
      Memory: num('memory'),
      MemorySwap: num('memswap'),
      CpuShares: num('cpushares'),
      CpuPeriod: num('cpuperiod'),
      CpuQuota: num('cpuquota'),
      CpusetCpus: ctx.str('cpusetcpus') || undefined,
      CpusetMems: ctx.str('cpusetmems') || undefined,
      ShmSize: num('shmsize'),
    },
    extraHosts,
    platform: ctx.str('platform') || undefined,
    registryAuths: registryConfig(ctx),
  };
}

/** X-Registry-Config: base64 JSON of credentials per registry host (docker build sends all it has). */
function registryConfig(ctx: RequestContext): Record<string, AuthConfig> {
  const header = ctx.req.headers['x-registry-config'];
  const text = Array.isArray(header) ? header[0] : header;
  if (!text) return {};
  try {
    const v: unknown = JSON.parse(Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
    return v as Record<string, AuthConfig>;
  } catch {
    throw invalidArgument('X-Registry-Config is not base64-encoded JSON');
  }
}

export function buildRoutes(router: Router, b: BuildBackend): void {
  router.post('/build', async (ctx) => {
    const options = buildOptions(ctx);
    const prepared = await b.prepare(ctx.req, options, ctx.signal);
    const progress = ctx.progressStream();
    try {
      const { id } = await prepared.run({
        stream: (text) => {
          if (!options.quiet) progress.write({ stream: text });
        },
        aux: (v) => progress.write({ aux: v }),
        progress: (m) => {
          if (!options.quiet) progress.write(m);
        },
      });
      if (options.quiet) progress.write({ stream: `${id}\n` });
    } catch (err) {
      const message = errorMessage(err);
      const code = typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : undefined;
      progress.write({ errorDetail: { message, ...(code !== undefined ? { code } : {}) }, error: message });
    } finally {
      await prepared.discard();
    }
    progress.end();
  });

  router.post('/build/prune', async (ctx) => {
    ctx.json(200, await b.prune(ctx.bool('all')));
  });

  router.post('/build/cancel', async (ctx) => {
    ctx.empty(200);
  });

  // BuildKit's session and gRPC endpoints: a clear refusal instead of a 404
  for (const p of ['/session', '/grpc']) {
    router.post(p, async () => {
      throw notImplemented(BUILDKIT_MESSAGE);
    });
  }
}
