/**
 * berthd's composition root: reads the command line, builds each service
 * with what it needs, wires the routers and serves the Engine API. Nothing
 * else in the code base sees "the daemon".
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { BERTH_VERSION, ENGINE_VERSION } from '../api/version.js';
import { EventBus } from '../core/events/bus.js';
import { errorMessage } from '../core/errdefs/index.js';
import { Filters } from '../core/filters.js';
import { LocalContentStore } from '../engine/content/local.js';
import { ContainerService } from '../engine/containers/container-service.js';
import { ContainerCommitter } from '../engine/containers/commit.js';
import { ImageCommitter } from '../engine/images/commit.js';
import { buildRoutes } from '../server/routers/build.js';
import { ImageService } from '../engine/images/image-service.js';
import { ConmonRuntime } from '../engine/runtime/conmon.js';
import { OverlaySnapshotter } from '../engine/snapshots/overlay.js';
import { NetworkService } from '../engine/networks/network-service.js';
import { AARDVARK_PATHS, NETAVARK_PATHS, findBinary } from '../engine/networks/netavark.js';
import { systemInfo, versionInfo } from '../engine/system/info.js';
import { ApiServer } from '../server/http-server.js';
import { Router } from '../server/router.js';
import { commitRoute, containerRoutes } from '../server/routers/containers.js';
import { imageRoutes } from '../server/routers/images.js';
import { networkRoutes } from '../server/routers/networks.js';
import { volumeRoutes } from '../server/routers/volumes.js';
import { execRoutes } from '../server/routers/exec.js';
import { ExecService } from '../engine/containers/exec-service.js';
import { NsexecRuntime } from '../engine/runtime/nsexec.js';
import { HealthMonitor } from '../engine/containers/health.js';
import { VolumeService } from '../engine/volumes/volume-service.js';
import { ContainerMounts } from '../engine/containers/mounts.js';
import { systemRoutes } from '../server/routers/system.js';
import { containerFileRoutes } from '../server/routers/container-files.js';
import { ContainerArchive } from '../engine/containers/archive.js';
import { ContainerChanges } from '../engine/containers/diff.js';
import { ContainerStats } from '../engine/containers/stats.js';
import { ContainerTop } from '../engine/containers/top.js';
import { distributionRoutes, type DistributionBackend } from '../server/routers/distribution.js';
import { parsePlatform, pullReference } from '../engine/distribution/manifests.js';
import type { SaveItem } from '../engine/images/save-load.js';
import { Logger } from '../util/log.js';
import { MemoryTrimmer } from './memory-trim.js';
import { processExists, run } from '../util/proc.js';
import { type DaemonConfig, USAGE, UsageError, parseDaemonArgs, socketPath } from './config.js';

/** Finds an executable on PATH (conmon needs absolute paths). */
function which(binary: string): string | undefined {
  if (binary.includes('/')) return fs.existsSync(binary) ? path.resolve(binary) : undefined;
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir, binary);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  for (const dir of ['/usr/sbin', '/sbin', '/usr/local/sbin']) {
    const p = path.join(dir, binary);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

async function firstLineOf(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args).catch(() => undefined);
  const m = /version\s+(\S+)/.exec(r?.stdout ?? '');
  return m ? m[1] : 'unknown';
}

/** One daemon per data root: a pid file, refused while its owner lives. */
async function claimDataRoot(dataRoot: string): Promise<string> {
  const pidFile = path.join(dataRoot, 'berthd.pid');
  try {
    const pid = parseInt(await fsp.readFile(pidFile, 'utf8'), 10);
    if (pid !== process.pid && processExists(pid)) {
      const cmdline = await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes('berthd')) throw new UsageError(`another berthd (pid ${pid}) is using ${dataRoot}`);
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
  }
  await fsp.writeFile(pidFile, String(process.pid));
  return pidFile;
}

async function daemonId(dataRoot: string): Promise<string> {
  const file = path.join(dataRoot, 'engine-id');
  try {
    return (await fsp.readFile(file, 'utf8')).trim();
  } catch {
    const id = crypto.randomUUID();
    await fsp.writeFile(file, id);
    return id;
  }
}

export async function startDaemon(cfg: DaemonConfig, log: Logger): Promise<{ stop(): Promise<void> }> {
  if (process.getuid?.() !== 0) throw new UsageError('berthd needs to run as root');
  const runcPath = which(cfg.runtimePath);
  const conmonPath = which(cfg.conmonPath);
  if (!runcPath) throw new UsageError(`runtime binary "${cfg.runtimePath}" not found (install the runc package)`);
  if (!conmonPath) throw new UsageError(`conmon binary "${cfg.conmonPath}" not found (install the conmon package)`);
  const warnings: string[] = [];
  if (!fs.existsSync(cfg.initPath)) warnings.push(`WARNING: init binary ${cfg.initPath} not found: --init will fail`);

  await fsp.mkdir(cfg.dataRoot, { recursive: true, mode: 0o711 });
  await fsp.mkdir(cfg.execRoot, { recursive: true, mode: 0o711 });
  const pidFile = await claimDataRoot(cfg.dataRoot);

  const events = new EventBus();
  const content = new LocalContentStore(path.join(cfg.dataRoot, 'content'));
  await content.init();
  const snapshots = new OverlaySnapshotter(path.join(cfg.dataRoot, 'snapshots'));
  await snapshots.init();
  const images = new ImageService(content, snapshots, path.join(cfg.dataRoot, 'images'), events, log.child({ component: 'images' }));
  const runtime = new ConmonRuntime(conmonPath, runcPath, cfg.execRoot);
  await runtime.init();
  const containers = new ContainerService(
    { dataRoot: cfg.dataRoot, execRoot: cfg.execRoot, cgroupParent: cfg.cgroupParent, initPath: cfg.initPath },
    images,
    snapshots,
    runtime,
    events,
    log.child({ component: 'containers' }),
  );
  const netavark = findBinary(NETAVARK_PATHS);
  let networks: NetworkService | undefined;
  if (netavark) {
    networks = new NetworkService(
      {
        dataRoot: cfg.dataRoot,
        execRoot: cfg.execRoot,
        bridgeName: cfg.bridge,
        bip: cfg.bip,
        addressPool: cfg.addressPool,
        netavarkBinary: netavark,
        aardvarkBinary: findBinary(AARDVARK_PATHS),
      },
      events,
      log.child({ component: 'networks' }),
    );
    containers.setNetworking(networks);
    networks.resolveContainer = (name) => containers.tryResolve(name);
  } else {
    warnings.push('WARNING: netavark not found: containers get host or loopback-only networking (install netavark)');
  }
  const volumes = new VolumeService(cfg.dataRoot, events, log.child({ component: 'volumes' }));
  await volumes.init();
  const mounts = new ContainerMounts(volumes, () => containers.all(), log.child({ component: 'mounts' }), events);
  containers.setMounts(mounts);
  // records first: networking restores addresses and ports from them; then
  // containers, whose writable layers image GC must know about
  const nsexec = cfg.execHelper === 'none' ? undefined : new NsexecRuntime(cfg.execHelper ? path.resolve(cfg.execHelper) : undefined);
  const execs = new ExecService(containers, runtime, nsexec, cfg.execRoot, events, log.child({ component: 'exec' }));
  await execs.init();
  containers.execIds = (id) => execs.idsFor(id);
  const health = new HealthMonitor(
    execs,
    { get: (id) => containers.get(id), save: (c) => containers.store.save(c), eventAttributes: (c, extra) => containers.eventAttributes(c, extra) },
    events,
    log.child({ component: 'health' }),
  );
  containers.onStarted = (c) => health.started(c);
  containers.onStopped = (c) => health.stopped(c.id);
  containers.onRemoved = (id) => execs.forgetContainer(id);
  const records = await containers.load();
  await networks?.init(records);
  await containers.init();
  for (const c of containers.all()) if (c.state.Running && !c.state.Restarting) health.started(c, true);
  await images.init();
  // Rarely used services load on first use, which keeps the idle daemon small.
  const distribution = lazy(async () => {
    const { DistributionService } = await import('../engine/distribution/service.js');
    return new DistributionService(content, snapshots, images, events, cfg.registry, log.child({ component: 'distribution' }));
  });
  const saveLoadDir = path.join(cfg.dataRoot, 'tmp');
  const saveLoad = lazy(async () => {
    const { SaveLoad } = await import('../engine/images/save-load.js');
    const s = new SaveLoad(content, snapshots, images, events, saveLoadDir, log.child({ component: 'save-load' }));
    await s.init();
    return s;
  });
  const exportDir = path.join(cfg.execRoot, 'export');
  const exporter = lazy(() => import('../engine/archive/export-rootfs.js'));
  const committer = new ImageCommitter(content, snapshots, images);
  const builds = lazy(async () => {
    const { BuildService } = await import('../engine/build/service.js');
    const service = new BuildService(
      {
        images,
        containers,
        committer,
        snapshots,
        log: log.child({ component: 'build' }),
        pull: async (reference, auths, out, signal) => {
          const ref = pullReference(reference, undefined);
          const host = ref.domain === 'docker.io' ? 'https://index.docker.io/v1/' : ref.domain;
          await (await distribution()).pull(ref, { auth: auths[host] ?? auths[ref.domain], progress: (m) => out.progress(m as Record<string, unknown>), signal });
        },
      },
      cfg.dataRoot,
    );
    await service.init();
    return service;
  });
  // what an interrupted load, export or build left behind goes now
  if (await hasEntries(saveLoadDir)) await saveLoad();
  if (await hasEntries(exportDir)) await (await exporter()).sweepExportMounts(exportDir);
  if (await hasEntries(path.join(cfg.dataRoot, 'builder', 'tmp'))) await builds();
  const dist: DistributionBackend = {
    pullReference,
    parsePlatform: (text) => (text ? parsePlatform(text) : undefined),
    pull: async (ref, o) => (await distribution()).pull(ref, o),
    push: async (ref, o) => (await distribution()).push(ref, o),
    login: async (auth) => (await distribution()).login(auth),
    resolveForSave: async (names) => (await saveLoad()).resolveForSave(names),
    save: async (items, out) => (await saveLoad()).save(items as SaveItem[], out),
    load: async (body, progress) => (await saveLoad()).load(body, progress),
    exportContainer: async (name) => (await exporter()).exportRootfs(await snapshots.mounts(containers.resolve(name).id), exportDir),
  };

  const [runcVersion, conmonVersion, id] = await Promise.all([
    firstLineOf(runcPath, ['--version']),
    firstLineOf(conmonPath, ['--version']),
    daemonId(cfg.dataRoot),
  ]);

  const router = new Router();
  systemRoutes(router, {
    version: () => versionInfo({ runcVersion, conmonVersion }),
    info: () => systemInfo({ containers, images, dataRoot: cfg.dataRoot, daemonId: id, runcVersion, conmonVersion, warnings }),
    diskUsage: async () => {
      const imageList = await images.list(new Filters(), true);
      const containerList = await containers.list({ all: true, size: true, filters: new Filters() });
      return {
        LayersSize: imageList.reduce((n, i) => n + i.Size, 0),
        Images: imageList,
        Containers: containerList,
        Volumes: await Promise.all(volumes.all().map(async (v) => volumes.view(v, await volumes.usage(v.name, mounts.usedBy(v.name).length)))),
        BuildCache: [],
      };
    },
    events,
    resolveContainer: (name) => containers.tryResolve(name)?.id,
    resolveImage: (name) => images.tryResolve(name)?.id,
  });
  containerRoutes(router, containers);
  const archive = new ContainerArchive(containers, events);
  const top = new ContainerTop(containers);
  const changes = new ContainerChanges(containers);
  const stats = new ContainerStats(containers, log.child({ component: 'stats' }));
  stats.start();
  containerFileRoutes(router, {
    resolve: (id) => containers.resolve(id),
    statPath: (id, p) => archive.statPath(id, p),
    archive: (id, p, begin, signal) => archive.archive(id, p, begin, signal),
    extract: (id, p, body, options) => archive.extract(id, p, body, options),
    top: (id, psArgs) => top.top(id, psArgs),
    changes: (id) => changes.changes(id),
    stats: (id, options, emit, signal) => stats.stats(id, options, emit, signal),
  });
  commitRoute(router, new ContainerCommitter(containers, images, committer, events));
  buildRoutes(router, {
    prepare: async (body, options, signal) => (await builds()).prepare(body, options, signal),
    prune: async () => (await builds()).prune(),
  });
  execRoutes(router, execs);
  imageRoutes(router, images, dist);
  distributionRoutes(router, dist);
  volumeRoutes(router, {
    create: async (body) => volumes.view(await volumes.create(body)),
    list: (filters) => volumes.list(filters, (n) => mounts.usedBy(n)),
    inspect: (name) => volumes.view(volumes.resolve(name)),
    remove: (name, force) => volumes.remove(name, mounts.usedBy(name), force),
    prune: (filters) => volumes.prune(filters, (n) => mounts.usedBy(n)),
  });
  if (networks) {
    const nets = networks;
    networkRoutes(router, {
      create: (body) => nets.create(body),
      list: (filters) => nets.list(filters, containers.all()),
      inspect: (id) => nets.inspect(id, containers.all()),
      remove: (id) => nets.remove(id, containers.all()),
      prune: (filters) => nets.prune(filters, containers.all()),
      connect: (network, container, endpoint) => containers.connectNetwork(container, network, endpoint),
      disconnect: (network, container) => containers.disconnectNetwork(container, network),
    });
  }

  const trimmer = new MemoryTrimmer();
  const server = new ApiServer(router, log.child({ component: 'api' }), () => trimmer.activity());
  for (const host of cfg.hosts) {
    const sock = socketPath(host);
    await server.listen(sock, 0o660);
    if (cfg.group) await run('chgrp', [cfg.group, sock]);
    log.info('API listening', { socket: sock });
  }
  log.info('berthd started', { version: BERTH_VERSION, engine: ENGINE_VERSION, dataRoot: cfg.dataRoot, execRoot: cfg.execRoot });

  return {
    async stop() {
      trimmer.stop();
      await server.close();
      containers.shutdown();
      stats.shutdown();
      networks?.shutdown();
      await networks?.shutdownCleanup();
      await fsp.rm(pidFile, { force: true });
      log.info('berthd stopped; containers keep running');
    },
  };
}

/** A service made on first use (and only once; a failed attempt is retried next time). */
function lazy<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () =>
    (made ??= make().catch((err: unknown) => {
      made = undefined;
      throw err;
    }));
}

async function hasEntries(dir: string): Promise<boolean> {
  return ((await fsp.readdir(dir).catch(() => [] as string[])).length) > 0;
}

export async function main(argv: string[]): Promise<void> {
  let parsed: ReturnType<typeof parseDaemonArgs>;
  try {
    parsed = parseDaemonArgs(argv);
  } catch (err) {
    process.stderr.write(`berthd: ${errorMessage(err)}\nSee 'berthd --help'.\n`);
    process.exit(125);
  }
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (parsed === 'version') {
    process.stdout.write(`berthd version ${BERTH_VERSION} (Engine API compatible with Docker ${ENGINE_VERSION})\n`);
    return;
  }
  const cfg = parsed;
  const log = new Logger(cfg.logLevel, {});
  process.on('unhandledRejection', (reason) => log.error('unhandled rejection', { error: errorMessage(reason) }));
  process.on('uncaughtException', (err) => {
    // a broken stderr must not turn into a loop of failing log writes
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return;
    log.error('uncaught exception', { error: err.message, stack: err.stack });
  });
  let daemon: { stop(): Promise<void> };
  try {
    daemon = await startDaemon(cfg, log);
  } catch (err) {
    log.error('berthd failed to start', { error: errorMessage(err) });
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    daemon
      .stop()
      .catch((err) => log.error('shutdown failed', { error: errorMessage(err) }))
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
