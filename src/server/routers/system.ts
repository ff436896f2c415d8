/** /_ping, /version, /info, /events, /system/df, /plugins (none) and the BuildKit endpoints we decline. */
import { invalidArgument } from '../../core/errdefs/index.js';
import type { EngineEvent } from '../../core/events/bus.js';
import { Filters } from '../../core/filters.js';
import { parseTimeArg } from '../../util/time.js';
import type { Router } from '../router.js';

export interface SystemBackend {
  version(): Record<string, unknown>;
  info(): Record<string, unknown>;
  diskUsage(types: string[]): Promise<Record<string, unknown>>;
  events: {
    recent(sinceNano: number, untilNano?: number): EngineEvent[];
    subscribe(listener: (e: EngineEvent) => void): () => void;
  };
  /** Resolves container/image names in event filters to IDs. */
  resolveContainer(name: string): string | undefined;
  resolveImage(name: string): string | undefined;
}

const EVENT_FILTERS = ['type', 'container', 'image', 'event', 'label', 'network', 'volume', 'daemon', 'scope', 'node', 'plugin', 'service', 'config', 'secret'];

export function systemRoutes(router: Router, b: SystemBackend): void {
  const ping = async (ctx: Parameters<Parameters<Router['get']>[1]>[0]): Promise<void> => {
    ctx.text(200, 'OK', {
      'Builder-Version': '1',
      Swarm: 'inactive',
      'Cache-Control': 'no-cache, no-store, must-revalidate',
      Pragma: 'no-cache',
    });
  };
  router.get('/_ping', ping);
  router.head('/_ping', ping);

  router.get('/version', async (ctx) => ctx.json(200, b.version()));
  router.get('/info', async (ctx) => ctx.json(200, b.info()));
  // no managed plugins: Docker lists none as [] (docker-py's plugins.list(), `docker plugin ls`)
  router.get('/plugins', async (ctx) => {
    Filters.parse(ctx.str('filters'), ['capability', 'enable']);
    ctx.json(200, []);
  });
  router.get('/system/df', async (ctx) => ctx.json(200, await b.diskUsage(ctx.query.getAll('type'))));

  router.get('/events', async (ctx) => {
    const filters = Filters.parse(ctx.str('filters'), EVENT_FILTERS);
    const sinceArg = ctx.str('since');
    const untilArg = ctx.str('until');
    const sinceMs = sinceArg ? parseTimeArg(sinceArg) : undefined;
    const untilMs = untilArg ? parseTimeArg(untilArg) : undefined;
    const containers = filters.get('container').map((c) => b.resolveContainer(c) ?? c);
    const images = filters.get('image');
    const match = (e: EngineEvent): boolean => {
      if (!filters.matchAny('type', (t) => t === e.Type)) return false;
      if (!filters.matchAny('event', (a) => a === e.Action || e.Action.startsWith(`${a}:`))) return false;
      if (containers.length && !(e.Type === 'container' && containers.some((c) => c === e.Actor.ID || c === e.Actor.Attributes.name))) {
        return false;
      }
      if (images.length) {
        const ok = images.some((i) => {
          const id = b.resolveImage(i);
          return (
            (e.Type === 'image' && (e.Actor.ID === id || e.Actor.Attributes.name === i)) ||
            (e.Type === 'container' && (e.Actor.Attributes.image === i || (id !== undefined && e.Actor.Attributes.image === id)))
          );
        });
        if (!ok) return false;
      }
      if (!filters.matchLabels(e.Actor.Attributes)) return false;
      if (!filters.matchAny('network', (n) => e.Type === 'network' && (e.Actor.ID === n || e.Actor.Attributes.name === n))) return false;
      if (!filters.matchAny('volume', (v) => e.Type === 'volume' && e.Actor.ID === v)) return false;
      return true;
    };
    if (untilMs !== undefined && sinceMs !== undefined && untilMs < sinceMs) throw invalidArgument('since time must be before until time');
    const res = ctx.beginJson(200);
    const write = (e: EngineEvent): void => {
      if (match(e)) res.write(JSON.stringify(e) + '\n');
    };
    const untilNano = untilMs !== undefined ? untilMs * 1e6 : undefined;
    if (sinceMs !== undefined) for (const e of b.events.recent(sinceMs * 1e6, untilNano)) write(e);
    if (untilMs !== undefined && untilMs <= Date.now()) {
      res.end();
      return;
    }
    await new Promise<void>((resolve) => {
      const unsubscribe = b.events.subscribe((e) => {
        if (untilNano !== undefined && e.timeNano > untilNano) return;
        write(e);
      });
      let timer: NodeJS.Timeout | undefined;
      const stop = (): void => {
        unsubscribe();
        if (timer) clearTimeout(timer);
        resolve();
      };
      if (untilMs !== undefined) timer = setTimeout(stop, untilMs - Date.now());
      ctx.signal.addEventListener('abort', stop, { once: true });
    });
    if (!res.writableEnded) res.end();
  });

}
