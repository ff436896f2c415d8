/** /containers/* routes over a ContainersBackend (ContainerService satisfies it). */
import { containerConfigSchema, createContainerSchema, hostConfigSchema, type ContainerConfig, type CreateContainerBody, type HostConfig } from '../../api/types.js';
import { decodeBody, type Schema } from '../../api/decode.js';
import { invalidArgument } from '../../core/errdefs/index.js';
import { Filters } from '../../core/filters.js';
import { parseTimeArg } from '../../util/time.js';
import type { RequestContext } from '../context.js';
import type { Router } from '../router.js';
import { drainedOrClosed } from '../../util/streams.js';
import { frame } from '../stdcopy.js';
import type { AttachClient } from '../../engine/containers/attach.js';

interface LogEntryView {
  stream: 1 | 2;
  time: string;
  data: Buffer;
}

export interface ContainersBackend {
  create(body: CreateContainerBody, name?: string): Promise<{ Id: string; Warnings: string[] }>;
  start(id: string): Promise<void>;
  stop(id: string, o: { timeout?: number; signal?: string }): Promise<void>;
  restart(id: string, o: { timeout?: number; signal?: string }): Promise<void>;
  kill(id: string, signal?: string): Promise<void>;
  top(id: string, psArgs?: string): Promise<{ Titles: string[]; Processes: string[][] }>;
  pause(id: string): Promise<void>;
  unpause(id: string): Promise<void>;
  rename(id: string, name: string): Promise<void>;
  remove(id: string, o: { force?: boolean; volumes?: boolean }): Promise<void>;
  wait(id: string, condition: 'not-running' | 'next-exit' | 'removed', abort?: AbortSignal): Promise<{ StatusCode: number; Error: { Message: string } | null }>;
  list(o: { all?: boolean; limit?: number; size?: boolean; filters: Filters }): Promise<unknown[]>;
  inspect(id: string, size?: boolean): Promise<Record<string, unknown>>;
  resolve(id: string): { id: string; config: { Tty: boolean } };
  logs(
    id: string,
    q: { stdout: boolean; stderr: boolean; since?: number; until?: number; tail: number; follow: boolean },
    emit: (e: LogEntryView) => Promise<void> | void,
    abort: AbortSignal,
    opened?: () => void,
  ): Promise<void>;
  attach(id: string, client: AttachClient): void;
  resize(id: string, h: number, w: number): Promise<void>;
  prune(filters: Filters): Promise<unknown>;
  update(id: string, changes: Partial<HostConfig>): Promise<unknown>;
}

const WAIT_CONDITIONS = ['not-running', 'next-exit', 'removed'] as const;

export function containerRoutes(router: Router, b: ContainersBackend): void {
  router.post('/containers/create', async (ctx) => {
    const body = decodeBody<CreateContainerBody>(await ctx.body(), createContainerSchema, 'ContainerCreateConfig');
    const platform = ctx.str('platform');
    if (platform && !/^linux(\/(amd64|x86_64))?$/.test(platform) && platform !== '') {
      throw invalidArgument(`image platform ${platform} is not supported by this daemon (linux/amd64)`);
    }
    ctx.json(201, await b.create(body, ctx.str('name') || undefined));
  });

  router.get('/containers/json', async (ctx) => {
    const filters = Filters.parse(ctx.str('filters'), [
      'id', 'name', 'label', 'status', 'ancestor', 'exited', 'before', 'since', 'volume', 'network', 'health', 'is-task', 'publish', 'expose',
    ]);
    ctx.json(200, await b.list({ all: ctx.bool('all'), limit: ctx.int('limit'), size: ctx.bool('size'), filters }));
  });

  router.post('/containers/prune', async (ctx) => {
    ctx.json(200, await b.prune(Filters.parse(ctx.str('filters'), ['until', 'label', 'label!'])));
  });

  router.get('/containers/:id/json', async (ctx) => {
    ctx.json(200, await b.inspect(ctx.params.id, ctx.bool('size')));
  });

  router.post('/containers/:id/start', async (ctx) => {
    if (ctx.str('checkpoint')) throw invalidArgument('checkpoints are not supported');
    await b.start(ctx.params.id);
    ctx.empty(204);
  });

  const stopOptions = (ctx: RequestContext): { timeout?: number; signal?: string } => ({
    timeout: ctx.int('t') ?? ctx.int('timeout'),
    signal: ctx.str('signal') || undefined,
  });

  router.post('/containers/:id/stop', async (ctx) => {
    await b.stop(ctx.params.id, stopOptions(ctx));
    ctx.empty(204);
  });

  router.post('/containers/:id/restart', async (ctx) => {
    await b.restart(ctx.params.id, stopOptions(ctx));
    ctx.empty(204);
  });

  router.post('/containers/:id/kill', async (ctx) => {
    await b.kill(ctx.params.id, ctx.str('signal') || 'SIGKILL');
    ctx.empty(204);
  });

  router.post('/containers/:id/pause', async (ctx) => {
    await b.pause(ctx.params.id);
    ctx.empty(204);
  });

  router.post('/containers/:id/unpause', async (ctx) => {
    await b.unpause(ctx.params.id);
    ctx.empty(204);
  });

  router.post('/containers/:id/rename', async (ctx) => {
    await b.rename(ctx.params.id, ctx.str('name') ?? '');
    ctx.empty(204);
  });

  router.post('/containers/:id/update', async (ctx) => {
    const schema: Schema = {};
    for (const k of [
      'CpuShares', 'Memory', 'NanoCpus', 'CpuPeriod', 'CpuQuota', 'CpuRealtimePeriod', 'CpuRealtimeRuntime', 'CpusetCpus', 'CpusetMems',
      'MemoryReservation', 'MemorySwap', 'MemorySwappiness', 'OomKillDisable', 'PidsLimit', 'BlkioWeight', 'RestartPolicy', 'KernelMemory',
    ]) {
      schema[k] = hostConfigSchema[k] ?? 'integer';
    }
    const changes = decodeBody<Partial<HostConfig>>(await ctx.body(), schema, 'UpdateConfig');
    ctx.json(200, await b.update(ctx.params.id, changes));
  });

  router.post('/containers/:id/resize', async (ctx) => {
    const h = ctx.int('h') ?? 0;
    const w = ctx.int('w') ?? 0;
    if (h < 0 || w < 0) throw invalidArgument('invalid terminal size');
    await b.resize(ctx.params.id, h, w);
    ctx.empty(200);
  });

  router.delete('/containers/:id', async (ctx) => {
    await b.remove(ctx.params.id, { force: ctx.bool('force'), volumes: ctx.bool('v') });
    ctx.empty(204);
  });

  router.post('/containers/:id/wait', async (ctx) => {
    const condition = (ctx.str('condition') || 'not-running') as (typeof WAIT_CONDITIONS)[number];
    if (!WAIT_CONDITIONS.includes(condition)) throw invalidArgument(`invalid condition: "${condition}"`);
    b.resolve(ctx.params.id); // 404 before the headers go out
    // Headers at once, body when the condition is met: docker run waits for
    // the headers before it starts the container.
    const waiting = b.wait(ctx.params.id, condition, ctx.signal);
    const res = ctx.beginJson(200);
    try {
      const result = await waiting;
      res.end(JSON.stringify(result) + '\n');
    } catch (err) {
      if (!ctx.signal.aborted) res.end(JSON.stringify({ StatusCode: -1, Error: { Message: String(err) } }) + '\n');
    }
  });

  router.get('/containers/:id/top', async (ctx) => {
    ctx.json(200, await b.top(ctx.params.id, ctx.str('ps_args') || undefined));
  });

  router.get('/containers/:id/logs', async (ctx) => {
    const c = b.resolve(ctx.params.id);
    const stdout = ctx.bool('stdout');
    const stderr = ctx.bool('stderr');
    if (!stdout && !stderr) throw invalidArgument('Bad parameters: you must choose at least one stream');
    const tailArg = ctx.str('tail') ?? 'all';
    let tail = -1;
    if (tailArg !== 'all' && tailArg !== '') {
      tail = parseInt(tailArg, 10);
      if (Number.isNaN(tail)) throw invalidArgument(`invalid value for tail: ${tailArg}`);
      if (tail < 0) tail = -1;
    }
    const sinceArg = ctx.str('since');
    const untilArg = ctx.str('until');
    const since = sinceArg && sinceArg !== '0' ? parseTimeArg(sinceArg) : undefined;
    const until = untilArg && untilArg !== '0' ? parseTimeArg(untilArg) : undefined;
    const timestamps = ctx.bool('timestamps');
    const tty = c.config.Tty;
    let started = false;
    const begin = (): void => {
      if (started) return;
      started = true;
      ctx.res!.writeHead(200, { 'Content-Type': tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream' });
      ctx.res!.flushHeaders();
    };
    const follow = ctx.bool('follow');
    await b.logs(
      c.id,
      { stdout, stderr, since, until, tail, follow },
      (e) => {
        begin();
        const data = timestamps ? Buffer.concat([Buffer.from(`${e.time} `), e.data]) : e.data;
        const ok = ctx.res!.write(tty ? data : frame(e.stream, data));
        if (!ok) return drainedOrClosed(ctx.res!); // a client that went away must not leave the follow waiting
      },
      ctx.signal,
      // a follower hears the stream has begun once the log is open, not before
      // (docker-py's run then waits and removes the container)
      () => {
        if (follow) begin();
      },
    );
    begin();
    ctx.res!.end();
  });

  const attachHandler = async (ctx: RequestContext): Promise<void> => {
    const c = b.resolve(ctx.params.id);
    const stream = ctx.bool('stream');
    const wantLogs = ctx.bool('logs');
    const tty = c.config.Tty;
    const multiplexed = !tty;
    const contentType = multiplexed && ctx.apiVersion >= 1.42 ? 'application/vnd.docker.multiplexed-stream' : 'application/vnd.docker.raw-stream';
    const io = {
      stdin: ctx.bool('stdin'),
      stdout: ctx.bool('stdout'),
      stderr: ctx.bool('stderr'),
    };
    const hijacked = ctx.hijack(contentType);
    const send = (s: 1 | 2, data: Buffer): void => hijacked.write(multiplexed ? frame(s, data) : data);
    if (wantLogs) {
      await b.logs(c.id, { stdout: io.stdout, stderr: io.stderr, tail: -1, follow: false }, (e) => send(e.stream, e.data), ctx.signal);
    }
    if (!stream) {
      hijacked.end();
      return;
    }
    b.attach(c.id, {
      ...io,
      output: send,
      close: () => hijacked.end(),
      input: io.stdin ? hijacked.input : undefined,
      onGone: (cb) => hijacked.onClose(cb),
    });
  };
  router.post('/containers/:id/attach', attachHandler);
}

export interface CommitBackend {
  commit(
    container: string,
    o: { repo?: string; tag?: string; comment?: string; author?: string; pause?: boolean; changes?: string[]; config?: Partial<ContainerConfig> },
  ): Promise<{ Id: string }>;
}

/** POST /commit: a container's changes become an image. */
export function commitRoute(router: Router, b: CommitBackend): void {
  router.post('/commit', async (ctx) => {
    const container = ctx.str('container');
    if (!container) throw invalidArgument('container is required');
    const text = await ctx.body();
    // docker CLI sends no body; some clients send "null" or a config to start from
    const config = text.trim() === '' || text.trim() === 'null' ? undefined : decodeBody<Partial<ContainerConfig>>(text, containerConfigSchema, 'ContainerConfig');
    const result = await b.commit(container, {
      repo: ctx.str('repo') || undefined,
      tag: ctx.str('tag') || undefined,
      comment: ctx.str('comment') || undefined,
      author: ctx.str('author') || undefined,
      pause: ctx.str('pause') === undefined ? true : ctx.bool('pause'),
      changes: ctx.query.getAll('changes').flatMap((c) => c.split('\n')),
      config: config && Object.keys(config).length ? config : undefined,
    });
    ctx.json(201, result);
  });
}
