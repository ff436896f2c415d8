/**
 * ContainerService: the container lifecycle (create, start, stop, kill,
 * restart, pause, rename, remove, wait) over the snapshotter (rootfs), the
 * conmon/runc runtime (processes) and the container store (state on disk).
 *
 * State changes of one container are serialised by a per-container lock;
 * exits reported by conmon (exit files, watched with inotify) are applied
 * under the same lock. Nothing waits for an exit while holding it.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CreateContainerBody, EndpointSettings, HostConfig } from '../../api/types.js';
import type { ContainerRecord, ContainerState, MountPoint } from '../../core/containers/types.js';
import { parseSignal, signalNumber } from '../../core/containers/signals.js';
import type { Digest } from '../../core/images/digest.js';
import { conflict, errnoCode, errorMessage, forbidden, internal, invalidArgument, notFound, notImplemented, notModified } from '../../core/errdefs/index.js';
import type { EventBus } from '../../core/events/bus.js';
import { Filters } from '../../core/filters.js';
import { newId, shortId } from '../../util/ids.js';
import type { Logger } from '../../util/log.js';
import { KeyedMutex, Mutex } from '../../util/mutex.js';
import { generateUniqueName } from '../../util/names.js';
import { processExists, run } from '../../util/proc.js';
import { ZERO_TIME, rfc3339Nano } from '../../util/time.js';
import { humanDuration } from '../../util/units.js';
import type { ImageService } from '../images/image-service.js';
import { type OverlaySnapshotter, overlayOptions } from '../snapshots/overlay.js';
import { type ConmonRuntime, CreateError } from '../runtime/conmon.js';
import { native, unmountDetached } from '../runtime/native.js';
import { secureJoin } from '../runtime/rootfs-path.js';
import { DEFAULT_PATH, buildSpec, type OciMount } from '../runtime/spec.js';
import { resolveUserSync } from '../runtime/user.js';
import { AttachHub, type AttachClient } from './attach.js';
import { validateHealthConfig } from './health.js';
import type { ContainerMounts } from './mounts.js';
import type { FilesystemView, FsMount } from './container-fs.js';
import { ContainerStore } from './container-store.js';
import { buildHostConfig, commandOf, logLimits, mergeConfig, validateHostConfig, validateName } from './create-config.js';
import { writeEtcFiles } from './etc-files.js';
import { type LogEntry, type LogHandover, type LogQuery, LOG_FILE, followLogs, readLogs, rotateLogs } from './logs.js';

export interface ContainerServiceConfig {
  dataRoot: string;
  execRoot: string;
  cgroupParent: string;
  initPath: string;
}

/** What a container's network looks like at start (see engine/networks). */
export interface NetworkSetup {
  namespace: 'host' | 'new' | { path: string };
  kind: 'host' | 'none' | 'bridge' | 'container';
  addresses: string[];
  hostGateway?: string;
  /** Name servers for resolv.conf (the network's DNS), unless --dns says otherwise. */
  dnsServers?: string[];
  /** container:<id> mode: that container's /etc files are used. */
  shareEtcFrom?: string;
  /** Resolves when the namespace is configured; the start waits for it before the process runs. */
  ready?: Promise<void>;
}

/** The seam where networking plugs into the container lifecycle. */
export interface ContainerNetworking {
  setup(c: ContainerRecord): Promise<NetworkSetup>;
  /** Releases what setup took; may finish its kernel work in the background. */
  teardown(c: ContainerRecord): Promise<void>;
  /** Called at create: validates the mode and records the endpoints asked for. */
  prepare(c: ContainerRecord, endpoints?: Record<string, EndpointSettings>): Promise<void>;
}

/** What connect/disconnect need from the network service. */
export interface NetworkAttachments {
  resolve(input: string): { id: string; name: string; driver: string; builtin: boolean };
  endpointRecord(c: ContainerRecord, n: { id: string; name: string; builtin: boolean }, ep: EndpointSettings): EndpointSettings;
  attachRunning(c: ContainerRecord, n: { id: string; name: string }): Promise<void>;
  detachRunning(c: ContainerRecord, n: { id: string; name: string }): Promise<void>;
}

/** Networking without bridges: host, or a namespace of its own with only loopback. */
export class LoopbackNetworking implements ContainerNetworking {
  async prepare(c: ContainerRecord): Promise<void> {
    const mode = c.hostConfig.NetworkMode;
    if (mode.startsWith('container:')) throw invalidArgument('network mode container:<name> needs bridge networking');
    if (!['default', 'bridge', 'none', 'host'].includes(mode)) throw notFound(`network ${mode} not found`);
  }
  async setup(c: ContainerRecord): Promise<NetworkSetup> {
    if (c.hostConfig.NetworkMode === 'host') return { namespace: 'host', kind: 'host', addresses: [] };
    return { namespace: 'new', kind: 'none', addresses: [] };
  }
  async teardown(): Promise<void> {}
}

export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  Created: number;
  Ports: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[];
  SizeRw?: number;
  SizeRootFs?: number;
  Labels: Record<string, string>;
  State: string;
  Status: string;
  HostConfig: { NetworkMode: string };
  NetworkSettings: { Networks: Record<string, unknown> };
  Mounts: MountPoint[];
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

const LIST_FILTERS = [
  'id', 'name', 'label', 'status', 'ancestor', 'exited', 'before', 'since', 'volume', 'network', 'health', 'is-task', 'publish', 'expose',
];
const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

function initialState(): ContainerState {
  return {
    Status: 'created',
    Running: false,
    Paused: false,
    Restarting: false,
    OOMKilled: false,
    Dead: false,
    Pid: 0,
    ExitCode: 0,
    Error: '',
    StartedAt: ZERO_TIME,
    FinishedAt: ZERO_TIME,
  };
}

/** Exit code Docker reports when a container cannot start. */
export function startFailureCode(message: string): number {
  if (/executable file not found|no such file or directory|not found in \$PATH/i.test(message)) return 127;
  if (/permission denied|is a directory/i.test(message)) return 126;
  return 128;
}

export class ContainerService {
  readonly store: ContainerStore;
  private readonly locks = new KeyedMutex();
  private readonly nameLock = new Mutex();
  private readonly signals = new EventEmitter();
  private readonly attachHub = new AttachHub();
  private readonly runcDeletes = new Map<string, Promise<void>>();
  /** Root filesystems detached whose overlay has not ended yet (see unmountRootfs). */
  private readonly rootfsReleases = new Map<string, Promise<void>>();
  private networking: ContainerNetworking = new LoopbackNetworking();
  private exitWatcher: fs.FSWatcher | undefined;
  private readonly logWatchers = new Map<string, fs.FSWatcher>();
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly config: ContainerServiceConfig,
    private readonly images: ImageService,
    private readonly snapshots: OverlaySnapshotter,
    private readonly runtime: ConmonRuntime,
    private readonly events: EventBus,
    private readonly log: Logger,
  ) {
    this.store = new ContainerStore(path.join(config.dataRoot, 'containers'), log);
    this.signals.setMaxListeners(0);
    images.setUsage({
      containersUsing: (imageId) =>
        this.store
          .all()
          .filter((c) => c.image === imageId)
          .map((c) => ({ id: c.id, running: c.state.Running })),
      chainsInUse: async () => {
        const out: Digest[] = [];
        for (const key of await this.snapshots.activeKeys()) {
          const parent = await this.snapshots.activeParent(key);
          if (parent) out.push(parent);
        }
        return out;
      },
    });
  }

  private attachments: NetworkAttachments | undefined;
  private mountsHelper: ContainerMounts | undefined;

  /** Volumes and bind mounts (engine/volumes); without it, containers get no extra mounts. */
  setMounts(m: ContainerMounts): void {
    this.mountsHelper = m;
  }

  setNetworking(n: ContainerNetworking & Partial<NetworkAttachments>): void {
    this.networking = n;
    if (n.attachRunning && n.detachRunning && n.resolve && n.endpointRecord) this.attachments = n as NetworkAttachments;
  }

  /** docker network connect: on a created container it is recorded; on a running one it is plugged in now. */
  async connectNetwork(containerInput: string, networkInput: string, endpoint: EndpointSettings = {}): Promise<void> {
    const a = this.attachments;
    if (!a) throw notImplemented('networks are not available');
    const c = this.resolve(containerInput);
    const n = a.resolve(networkInput);
    await this.locks.run(c.id, async () => {
      const mode = c.hostConfig.NetworkMode;
      if (n.driver !== 'bridge') throw forbidden(`container cannot be disconnected from host network or connected to host network`);
      if (mode === 'host' || mode === 'none' || mode.startsWith('container:')) {
        throw forbidden(`container sharing network namespace with another container or host cannot be connected to any other network`);
      }
      if (c.networkSettings.Networks[n.name]) throw forbidden(`endpoint with name ${c.name} already exists in network ${n.name}`);
      c.networkSettings.Networks[n.name] = a.endpointRecord(c, n, endpoint);
      if (c.state.Running) {
        try {
          await a.attachRunning(c, n);
        } catch (err) {
          delete c.networkSettings.Networks[n.name];
          throw err;
        }
      }
      await this.store.save(c);
    });
    this.events.publish('network', 'connect', n.id, { container: c.id, name: n.name, type: n.driver });
  }

  async disconnectNetwork(containerInput: string, networkInput: string): Promise<void> {
    const a = this.attachments;
    if (!a) throw notImplemented('networks are not available');
    const c = this.resolve(containerInput);
    const n = a.resolve(networkInput);
    await this.locks.run(c.id, async () => {
      if (!c.networkSettings.Networks[n.name]) throw forbidden(`container ${c.id} is not connected to network ${n.name}`);
      if (c.state.Running) await a.detachRunning(c, n);
      delete c.networkSettings.Networks[n.name];
      await this.store.save(c);
    });
    this.events.publish('network', 'disconnect', n.id, { container: c.id, name: n.name, type: n.driver });
  }

  // ---- paths ---------------------------------------------------------------

  private dir(id: string): string {
    return this.store.dir(id);
  }

  private rootfs(id: string): string {
    return path.join(this.dir(id), 'rootfs');
  }

  /** Where a running container's root filesystem is mounted on the host. */
  rootfsPath(id: string): string {
    return this.rootfs(id);
  }

  /** The container's writable layer (overlay upper dir, whiteouts and all). */
  async upperDir(id: string): Promise<string> {
    return (await this.snapshots.mounts(id)).upperDir;
  }

  get(id: string): ContainerRecord | undefined {
    return this.store.get(id);
  }

  /** Exec session IDs of a container (set by the composition root). */
  execIds: (containerId: string) => string[] = () => [];
  /** Called when a container is removed (exec sessions go with it). */
  onRemoved: (containerId: string) => void = () => {};

  bundle(id: string): string {
    return path.join(this.config.execRoot, 'containers', id);
  }

  // ---- startup and shutdown ----------------------------------------------

  /** Reads the records (first phase of startup: networking restores its state from them). */
  async load(): Promise<ContainerRecord[]> {
    await fsp.mkdir(path.join(this.config.execRoot, 'containers'), { recursive: true, mode: 0o700 });
    return this.store.load();
  }

  /** Reconciles the records with what survived (conmon, exit files, mounts) and starts watching. */
  async init(): Promise<void> {
    const records = this.store.all();
    const known = new Set(records.map((r) => r.id));
    const exitsPending: string[] = [];
    const inRunc = new Set((await this.runtime.runc.list().catch(() => [])).map((st) => st.id));
    for (const c of records) {
      if (c.state.Status === 'removing') {
        await this.removeLocked(c).catch((err) => this.log.warn('could not finish removal', { id: c.id, error: err as Error }));
        continue;
      }
      if (c.state.Running || c.state.Status === 'restarting') {
        if (this.runtime.readExit(c.id) !== undefined) {
          exitsPending.push(c.id);
        } else if (this.conmonAlive(c)) {
          this.log.info('container still running', { id: shortId(c.id) });
          this.rotateLogsOf(c);
          this.watchLogs(c);
          this.mountsHelper?.adopt(c);
        } else {
          // Its monitor is gone (host reboot, or conmon killed): it is not running any more.
          this.log.warn('container lost its monitor; marking it exited', { id: shortId(c.id) });
          await this.runtime.runc.kill(c.id, 'SIGKILL', true).catch(() => {});
          await this.finishExit(c, 255, false);
        }
      } else {
        // a start interrupted between `runc create` and its record leaves runc's
        // container (and its conmon) behind: the next start would find the id taken
        if (inRunc.has(c.id)) await this.runtime.runc.delete(c.id, true).catch(() => {});
        this.unmountRootfs(c.id);
        await fsp.rm(this.bundle(c.id), { recursive: true, force: true });
      }
    }
    // restart policies at daemon start: a back-off cut short resumes; "always"
    // containers start again, "unless-stopped" ones unless someone stopped them
    for (const c of this.store.all()) {
      if (c.state.Status === 'restarting' && !this.restartTimers.has(c.id)) {
        c.state = { ...c.state, Status: 'exited', Running: false, Restarting: false };
        if (this.shouldRestart(c, c.state.ExitCode)) await this.scheduleRestart(c, 0);
        else await this.store.save(c);
        continue;
      }
      if (c.state.Running || !c.hasBeenStarted || c.hostConfig.AutoRemove) continue;
      const policy = c.hostConfig.RestartPolicy.Name;
      if (policy === 'always' || (policy === 'unless-stopped' && !c.manuallyStopped)) {
        setImmediate(() => {
          this.start(c.id).catch((err) => this.log.warn('restart at daemon start failed', { id: shortId(c.id), error: errorMessage(err) }));
        });
      }
    }
    // leftovers of interrupted creates and removals
    for (const key of await this.snapshots.activeKeys()) {
      if (!known.has(key)) await this.snapshots.remove(key);
    }
    for (const name of await fsp.readdir(this.runtime.exitDir)) {
      if (!known.has(name)) await fsp.rm(path.join(this.runtime.exitDir, name), { force: true });
    }
    for (const name of await fsp.readdir(path.join(this.config.execRoot, 'containers'))) {
      if (!known.has(name)) await fsp.rm(path.join(this.config.execRoot, 'containers', name), { recursive: true, force: true });
    }
    for (const id of inRunc) {
      if (!known.has(id)) await this.runtime.runc.delete(id, true).catch(() => {});
    }

    this.exitWatcher = fs.watch(this.runtime.exitDir, (_event, filename) => {
      if (filename && /^[a-f0-9]{64}$/.test(filename)) this.onExitFile(filename);
    });
    this.exitWatcher.on('error', (err) => this.log.error('exit watcher failed', { error: err }));
    for (const id of exitsPending) this.onExitFile(id);

    // Log rotation, and a safety net for monitors that die without an exit file.
    const tick = setInterval(() => void this.housekeeping(), 1000);
    tick.unref();
    this.timers.push(tick);
  }

  /** Stops watching; containers keep running under their conmon. */
  shutdown(): void {
    this.exitWatcher?.close();
    for (const t of this.timers) clearInterval(t);
    for (const w of this.logWatchers.values()) w.close();
    this.logWatchers.clear();
  }

  /** rotateLogs for a container; a failure is logged, and the next rotation tries again. */
  private rotateLogsOf(c: ContainerRecord): void {
    try {
      rotateLogs(this.dir(c.id), c.logMaxFiles);
    } catch (err) {
      this.log.warn('log rotation failed', { id: shortId(c.id), error: err as Error });
    }
  }

  /**
   * conmon replaces ctr.log (a rename) when it reaches max-size; rotating at
   * once keeps the replaced file, so what survives is the newest output.
   */
  private watchLogs(c: ContainerRecord): void {
    if (c.hostConfig.LogConfig.Type === 'none' || c.logMaxSize <= 0 || this.logWatchers.has(c.id)) return;
    const dir = this.dir(c.id);
    try {
      const w = fs.watch(dir, (event, filename) => {
        if (event === 'rename' && filename === LOG_FILE) this.rotateLogsOf(c);
      });
      w.on('error', () => this.unwatchLogs(c.id));
      this.logWatchers.set(c.id, w);
    } catch (err) {
      this.log.warn('cannot watch logs; rotating by polling', { id: shortId(c.id), error: err as Error });
    }
  }

  private unwatchLogs(id: string): void {
    this.logWatchers.get(id)?.close();
    this.logWatchers.delete(id);
  }

  private conmonAlive(c: ContainerRecord): boolean {
    if (!c.conmonPid || !processExists(c.conmonPid)) return false;
    try {
      const cmdline = fs.readFileSync(`/proc/${c.conmonPid}/cmdline`, 'utf8');
      return cmdline.includes('conmon') && cmdline.includes(c.id);
    } catch {
      return false;
    }
  }

  private async housekeeping(): Promise<void> {
    for (const c of this.store.all()) {
      // a container waiting out its restart back-off has no monitor, by design
      if (!c.state.Running || c.state.Restarting) continue;
      try {
        if (c.logMaxSize > 0) rotateLogs(this.dir(c.id), c.logMaxFiles);
        if (!this.conmonAlive(c) && this.runtime.readExit(c.id) === undefined) {
          this.log.warn('container monitor died', { id: shortId(c.id) });
          await this.locks.run(c.id, async () => {
            const cur = this.store.get(c.id);
            if (cur?.state.Running && !cur.state.Restarting) await this.finishExit(c, 255, false);
          });
        }
      } catch (err) {
        this.log.warn('housekeeping failed', { id: shortId(c.id), error: err as Error });
      }
    }
  }

  // ---- lookup --------------------------------------------------------------

  tryResolve(input: string): ContainerRecord | undefined {
    if (!input) return undefined;
    const exact = this.store.get(input);
    if (exact) return exact;
    const named = this.store.byName(input);
    if (named) return named;
    if (/^[a-f0-9]+$/.test(input)) {
      const matches = this.store.all().filter((c) => c.id.startsWith(input));
      if (matches.length > 1) throw invalidArgument(`multiple IDs found with provided prefix: ${input}`);
      return matches[0];
    }
    return undefined;
  }

  resolve(input: string): ContainerRecord {
    const c = this.tryResolve(input);
    if (!c) throw notFound(`No such container: ${input}`);
    return c;
  }

  all(): ContainerRecord[] {
    return this.store.all();
  }

  // ---- create ----------------------------------------------------------------

  async create(body: CreateContainerBody, requestedName?: string): Promise<{ Id: string; Warnings: string[] }> {
    if (!body.Image) throw invalidArgument('Config cannot be empty in order to create a container');
    const image = this.images.resolve(body.Image);
    const imageRun = await this.images.runConfig(image.id);
    const config = mergeConfig(body, imageRun, body.Image);
    const { path: cmdPath, args } = commandOf(config);
    const hostConfig = buildHostConfig(body.HostConfig);
    const { maxSize, maxFiles } = logLimits(hostConfig);
    validateHealthConfig(config.Healthcheck);
    const warnings: string[] = [];
    if (hostConfig.LogConfig.Type === 'none') warnings.push('');

    const id = newId();
    const parent = await this.images.topChainID(image.id);
    return this.nameLock.run(async () => {
      let name: string;
      if (requestedName) {
        name = validateName(requestedName);
        const holder = this.store.byName(name);
        if (holder) {
          throw conflict(
            `Conflict. The container name "/${name}" is already in use by container "${holder.id}". You have to remove (or rename) that container to be able to reuse that name.`,
          );
        }
      } else {
        name = generateUniqueName((n) => this.store.byName(n) !== undefined);
      }
      // Docker: with the host's network the container also takes the host's name.
      if (!config.Hostname) config.Hostname = hostConfig.NetworkMode === 'host' ? os.hostname() : id.slice(0, 12);
      const mountRequests = this.mountsHelper ? await this.mountsHelper.resolve(hostConfig, config.Volumes, (n) => this.tryResolve(n)) : [];
      const rec: ContainerRecord = {
        id,
        name,
        created: rfc3339Nano(),
        path: cmdPath,
        args,
        image: image.id,
        config,
        hostConfig,
        state: initialState(),
        restartCount: 0,
        manuallyStopped: false,
        hasBeenStarted: false,
        conmonPid: 0,
        mounts: this.mountsHelper ? this.mountsHelper.view(mountRequests) : [],
        mountRequests,
        networkSettings: { Networks: {}, Ports: {}, SandboxKey: '' },
        logMaxSize: maxSize,
        logMaxFiles: maxFiles,
      };
      try {
        await this.networking.prepare(rec, body.NetworkingConfig?.EndpointsConfig ?? {});
        await this.snapshots.prepare(id, parent);
        await this.store.save(rec);
      } catch (err) {
        await this.snapshots.remove(id).catch(() => {});
        await this.store.delete(id).catch(() => {});
        await this.mountsHelper?.removeAnonymous(rec);
        throw err;
      }
      this.events.publish('container', 'create', id, this.eventAttributes(rec));
      return { Id: id, Warnings: warnings.filter(Boolean) };
    });
  }

  eventAttributes(c: ContainerRecord, extra: Record<string, string> = {}): Record<string, string> {
    return { ...(c.config.Labels ?? {}), image: c.config.Image, name: c.name, ...extra };
  }

  // ---- start -----------------------------------------------------------------

  async start(input: string): Promise<void> {
    const c = this.resolve(input);
    await this.locks.run(c.id, async () => {
      const cur = this.store.get(c.id);
      if (!cur) throw notFound(`No such container: ${input}`);
      if (cur.state.Paused) throw conflict('cannot start a paused container, try unpause instead');
      if (cur.state.Running) throw notModified();
      if (cur.state.Status === 'removing' || cur.state.Status === 'dead') {
        throw conflict(`container is marked for removal and cannot be started`);
      }
      await this.startLocked(cur);
    });
  }

  private async startLocked(c: ContainerRecord, isRestart = false): Promise<void> {
    const id = c.id;
    const pendingDelete = this.runcDeletes.get(id);
    if (pendingDelete) await pendingDelete;
    this.runtime.clearExit(id);
    const bundle = this.bundle(id);
    let network: NetworkSetup | undefined;
    let mountsPrepared = false;
    const t0 = performance.now();
    const marks: Record<string, number> = {};
    const mark = (name: string): void => {
      marks[name] = Math.round((performance.now() - t0) * 10) / 10;
    };
    // conmon starts up while the bundle is being prepared and waits for it
    const hc = c.hostConfig;
    const logging = hc.LogConfig.Type !== 'none';
    const pendingCreate = this.runtime.prepareCreate({
      id,
      name: c.name,
      bundle,
      logPath: logging ? path.join(this.dir(id), LOG_FILE) : '',
      logSizeMax: logging ? c.logMaxSize : 0,
      terminal: c.config.Tty,
      stdin: c.config.OpenStdin,
      // with a tty, stdin stays open when a client detaches (Docker closes it only for plain pipes)
      stdinOnce: c.config.StdinOnce && !c.config.Tty,
    });
    mark('spawned');
    try {
      // the root filesystem (then the user, read from it) and the network (then
      // the /etc files that name it) are prepared side by side
      const rootfsReady = (async () => {
        const rootfs = await this.mountRootfs(id);
        mark('mounted');
        const user = resolveUserSync(rootfs, c.config.User, c.hostConfig.GroupAdd ?? []); // two small reads: less than their thread-pool round trips
        if (c.config.WorkingDir) {
          const p = await secureJoin(rootfs, c.config.WorkingDir);
          const existed = await fsp.stat(p).then(() => true, () => false);
          if (!existed) {
            await fsp.mkdir(p, { recursive: true, mode: 0o755 });
            await fsp.chown(p, user.uid, user.gid);
          }
        }
        mark('user');
        return { rootfs, user };
      })();
      const networkReady = (async () => {
        network = await this.networking.setup(c);
        mark('network');
        return { network, etc: await this.etcFiles(c, network) };
      })();
      const [fsSide, netSide] = await Promise.allSettled([rootfsReady, networkReady]);
      if (fsSide.status === 'rejected') throw fsSide.reason;
      if (netSide.status === 'rejected') throw netSide.reason;
      const { rootfs, user } = fsSide.value;
      const { etc } = netSide.value;
      network = netSide.value.network;
      const cwd = c.config.WorkingDir || '/';

      const env = [...(c.config.Env ?? [])];
      const has = (k: string): boolean => env.some((e) => e.startsWith(`${k}=`));
      if (!has('PATH')) env.unshift(`PATH=${DEFAULT_PATH}`);
      if (!has('HOSTNAME')) env.push(`HOSTNAME=${network.kind === 'host' ? (await fsp.readFile(etc.hostnamePath, 'utf8')).trim() : c.config.Hostname}`);
      if (c.config.Tty && !has('TERM')) env.push('TERM=xterm');
      if (!has('HOME')) env.push(`HOME=${user.home || '/'}`);

      const mounts: OciMount[] = [
        { destination: '/etc/resolv.conf', type: 'bind', source: etc.resolvConfPath, options: ['rbind', 'rprivate'] },
        { destination: '/etc/hostname', type: 'bind', source: etc.hostnamePath, options: ['rbind', 'rprivate'] },
        { destination: '/etc/hosts', type: 'bind', source: etc.hostsPath, options: ['rbind', 'rprivate'] },
      ];
      if (this.mountsHelper) {
        mountsPrepared = true;
        mounts.push(...(await this.mountsHelper.prepare(c, rootfs)));
      }
      mark('mounts');

      const spec = buildSpec({
        rootfs,
        readonlyRootfs: hc.ReadonlyRootfs,
        terminal: c.config.Tty,
        consoleSize: hc.ConsoleSize,
        args: [c.path, ...c.args],
        env,
        cwd,
        user,
        hostname: c.config.Hostname,
        domainname: c.config.Domainname,
        cgroupsPath: path.posix.join(hc.CgroupParent || this.config.cgroupParent, id),
        network: network.namespace,
        pidMode: hc.PidMode,
        ipcMode: hc.IpcMode,
        utsMode: hc.UTSMode,
        privileged: hc.Privileged,
        capAdd: hc.CapAdd,
        capDrop: hc.CapDrop,
        resources: {
          memory: hc.Memory,
          memorySwap: hc.MemorySwap,
          memoryReservation: hc.MemoryReservation,
          memorySwappiness: hc.MemorySwappiness,
          oomKillDisable: hc.OomKillDisable,
          nanoCpus: hc.NanoCpus,
          cpuShares: hc.CpuShares,
          cpuQuota: hc.CpuQuota,
          cpuPeriod: hc.CpuPeriod,
          cpusetCpus: hc.CpusetCpus,
          cpusetMems: hc.CpusetMems,
          pidsLimit: hc.PidsLimit,
          blkioWeight: hc.BlkioWeight,
        },
        mounts,
        shmSize: hc.ShmSize,
        maskedPaths: hc.MaskedPaths,
        readonlyPaths: hc.ReadonlyPaths,
        sysctls: hc.Sysctls,
        oomScoreAdj: hc.OomScoreAdj,
        securityOpt: hc.SecurityOpt,
        ulimits: hc.Ulimits,
        init: hc.Init ? this.config.initPath : undefined,
      });

      // directory entries only, synchronously (cheaper than thread-pool round
      // trips); the spec's data is written on the pool, where writeback
      // throttling, if any, stalls a worker and not the event loop
      fs.rmSync(bundle, { recursive: true, force: true });
      fs.mkdirSync(bundle, { recursive: true, mode: 0o700 });
      await fsp.writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
      mark('bundle');

      const creating = pendingCreate.go();
      // runc creates the container while netavark configures its namespace
      const [created] = await Promise.all([creating, network.ready ?? Promise.resolve()]).catch(async (err) => {
        const done = await creating.catch(() => undefined);
        if (done) await this.runtime.runc.kill(id, 'SIGKILL').catch(() => {});
        throw err;
      });
      mark('created');
      if (logging) {
        rotateLogs(this.dir(id), c.logMaxFiles);
        this.watchLogs(c);
      }

      // clients that attached before start hear everything from the first byte
      for (const client of this.attachHub.take(id)) {
        try {
          AttachHub.connect(client, this.runtime.attach(bundle));
        } catch (err) {
          this.log.warn('attach failed', { id: shortId(id), error: err as Error });
          client.close();
        }
      }

      c.conmonPid = created.conmonPid;
      c.state = {
        ...c.state,
        Status: 'running',
        Running: true,
        Paused: false,
        Restarting: false,
        OOMKilled: false,
        Dead: false,
        Pid: created.pid,
        ExitCode: 0,
        Error: '',
        StartedAt: rfc3339Nano(),
        FinishedAt: ZERO_TIME,
      };
      c.hasBeenStarted = true;
      if (!isRestart) {
        c.manuallyStopped = false;
        this.restartDelays.delete(id);
      }
      mark('attached');
      // the record is written while the process is let go; should either fail, the
      // catch below (once both are over: its own save must come last) kills the
      // container and records the failure
      const outcomes = await Promise.allSettled([
        this.runtime.start(id, created.pid).then(() => mark('started')),
        this.store.save(c).then(() => mark('saved')),
      ]);
      for (const o of outcomes) if (o.status === 'rejected') throw o.reason;
      this.log.debug('container started', { id: shortId(id), ms: marks });
      this.events.publish('container', 'start', id, this.eventAttributes(c));
      this.onStarted(c);
    } catch (err) {
      pendingCreate.abort(); // nothing once it was let go
      const message = errorMessage(err);
      this.log.info('container failed to start', { id: shortId(id), error: message });
      await this.runtime.runc.delete(id, true).catch(() => {});
      if (network) {
        await network.ready?.catch(() => {}); // nothing of the setup still in flight
        await this.networking.teardown(c).catch(() => {});
      }
      if (mountsPrepared) await this.mountsHelper?.release(c);
      this.unmountRootfs(id);
      await fsp.rm(bundle, { recursive: true, force: true });
      this.attachHub.closeAll(id);
      const startError = err instanceof CreateError ? `OCI runtime create failed: ${message}: unknown` : message;
      c.state = {
        ...c.state,
        Status: c.hasBeenStarted ? 'exited' : 'created',
        Running: false,
        Pid: 0,
        ExitCode: startFailureCode(message),
        Error: startError,
      };
      if (c.hasBeenStarted) c.state.FinishedAt = rfc3339Nano();
      await this.store.save(c);
      if (c.hostConfig.AutoRemove) await this.removeLocked(c).catch(() => {});
      else this.signals.emit(`exit:${id}`, c.state.ExitCode);
      // Docker (daemon/start.go) answers a command that cannot be found or run
      // with an invalid-parameter error (400), anything else from the runtime with 500
      if (err instanceof CreateError) throw c.state.ExitCode === 127 || c.state.ExitCode === 126 ? invalidArgument(startError) : internal(startError);
      throw err;
    }
  }

  /** The container's /etc/hostname, hosts and resolv.conf (its own, or those of the container whose network it joins). */
  private async etcFiles(c: ContainerRecord, network: NetworkSetup): Promise<{ hostnamePath: string; hostsPath: string; resolvConfPath: string }> {
    if (network.shareEtcFrom) {
      // container:<id> mode: the same name, hosts and resolver as that container
      const other = this.store.get(network.shareEtcFrom)!;
      c.config.Hostname = other.config.Hostname;
      c.config.Domainname = other.config.Domainname;
      const dir = this.dir(other.id);
      return { hostnamePath: path.join(dir, 'hostname'), hostsPath: path.join(dir, 'hosts'), resolvConfPath: path.join(dir, 'resolv.conf') };
    }
    return writeEtcFiles({
      dir: this.dir(c.id),
      hostname: c.config.Hostname,
      domainname: c.config.Domainname,
      network: network.kind === 'container' ? 'bridge' : network.kind,
      addresses: network.addresses,
      extraHosts: [...(c.hostConfig.ExtraHosts ?? []), ...this.linkHosts(c)],
      dns: c.hostConfig.Dns?.length ? c.hostConfig.Dns : network.dnsServers,
      dnsSearch: c.hostConfig.DnsSearch,
      dnsOptions: c.hostConfig.DnsOptions,
      hostGateway: network.hostGateway,
    });
  }

  /** --link name:alias on the default bridge: hosts entries for running containers. */
  private linkHosts(c: ContainerRecord): string[] {
    const out: string[] = [];
    for (const link of c.hostConfig.Links ?? []) {
      const [target, alias] = link.split(':');
      const other = this.tryResolve(target.replace(/^\//, ''));
      if (!other || !other.state.Running) throw invalidArgument(`could not get container for ${target}`);
      const ip = Object.values(other.networkSettings.Networks).find((ep) => ep.IPAddress)?.IPAddress;
      if (!ip) continue;
      const names = [...new Set([alias || other.name, other.name, other.id.slice(0, 12)].filter(Boolean))];
      for (const name of names) out.push(`${name}:${ip}`);
    }
    return out;
  }

  // ---- exits -------------------------------------------------------------

  private onExitFile(id: string): void {
    void this.locks
      .run(id, async () => {
        const c = this.store.get(id);
        if (!c || !(c.state.Running || c.state.Status === 'restarting')) return;
        const code = this.runtime.readExit(id);
        if (code === undefined) return;
        const oom = fs.existsSync(path.join(this.bundle(id), 'oom'));
        await this.finishExit(c, code, oom);
      })
      .catch((err) => this.log.error('processing container exit failed', { id: shortId(id), error: err as Error }));
  }

  /** Records an exit and releases the container's resources. Caller holds the lock. */
  private async finishExit(c: ContainerRecord, code: number, oom: boolean): Promise<void> {
    const id = c.id;
    const t0 = performance.now();
    const marks: Record<string, number> = {};
    const mark = (name: string): void => {
      marks[name] = Math.round((performance.now() - t0) * 10) / 10;
    };
    const startedAt = Date.parse(c.state.StartedAt);
    c.state = {
      ...c.state,
      Status: 'exited',
      Running: false,
      Paused: false,
      Restarting: false,
      OOMKilled: oom,
      Pid: 0,
      ExitCode: code,
      FinishedAt: rfc3339Nano(),
    };
    // addresses and ports go back now; the namespace is undone in the background
    await this.networking.teardown(c).catch((err) => this.log.warn('network teardown failed', { id: shortId(id), error: err as Error }));
    await this.mountsHelper?.release(c);
    // An auto-remove container's record is about to go: a crash before that
    // leaves the exit file, which the next start processes again.
    if (!c.hostConfig.AutoRemove) await this.store.save(c);
    mark('saved');
    this.unwatchLogs(id);
    if (c.logMaxSize > 0 && !c.hostConfig.AutoRemove) this.rotateLogsOf(c);
    mark('rotated');
    this.unmountRootfs(id);
    mark('unmounted');
    // runc's own bookkeeping (state dir, cgroups) goes in the background;
    // a restart of this container waits for it. Spawning runc costs the main
    // thread ~2 ms, so an auto-removed container's `wait` is answered first.
    const deleteRuntimeState = (): void => {
      const del = this.runtime.runc
        .delete(id, true)
        .catch((err) => this.log.warn('runc delete failed', { id: shortId(id), error: err as Error }))
        .then(async () => {
          await fsp.rm(this.bundle(id), { recursive: true, force: true });
          this.runtime.clearExit(id);
        })
        .finally(() => this.runcDeletes.delete(id));
      this.runcDeletes.set(id, del);
    };
    if (!c.hostConfig.AutoRemove) deleteRuntimeState();
    const execDuration = Number.isNaN(startedAt) ? 0 : Math.round((Date.now() - startedAt) / 1000);
    if (oom) this.events.publish('container', 'oom', id, this.eventAttributes(c));
    this.events.publish('container', 'die', id, this.eventAttributes(c, { exitCode: String(code), execDuration: String(execDuration) }));
    this.signals.emit(`exit:${id}`, code);
    this.onStopped(c);
    mark('exit-signalled');
    if (c.hostConfig.AutoRemove) {
      await this.removeLocked(c).catch((err) => this.log.warn('auto-remove failed', { id: shortId(id), error: err as Error }));
      mark('removed');
      setImmediate(deleteRuntimeState); // after the `wait` answers have been written
    } else if (this.shouldRestart(c, code)) {
      await this.scheduleRestart(c, Number.isNaN(startedAt) ? 0 : Date.now() - startedAt);
    }
    this.log.debug('container exit processed', { id: shortId(id), ms: marks });
  }

  // ---- restart policies ----------------------------------------------------

  private readonly restartTimers = new Map<string, NodeJS.Timeout>();
  private readonly restartDelays = new Map<string, number>();

  /** Containers a forced removal is taking away. */
  private readonly removing = new Set<string>();

  private shouldRestart(c: ContainerRecord, code: number): boolean {
    if (c.manuallyStopped || this.removing.has(c.id)) return false;
    const p = c.hostConfig.RestartPolicy;
    switch (p.Name) {
      case 'always':
      case 'unless-stopped':
        return true;
      case 'on-failure':
        return code !== 0 && (p.MaximumRetryCount === 0 || c.restartCount < p.MaximumRetryCount);
      default:
        return false;
    }
  }

  /**
   * Docker's back-off: 100 ms after the first exit, doubling after each
   * quick one up to a minute, back to 100 ms once a run lasted 10 s.
   */
  private async scheduleRestart(c: ContainerRecord, ranMs: number): Promise<void> {
    const id = c.id;
    const previous = this.restartDelays.get(id);
    const delay = ranMs >= 10_000 || previous === undefined ? 100 : Math.min(previous * 2, 60_000);
    this.restartDelays.set(id, delay);
    c.state = { ...c.state, Status: 'restarting', Restarting: true, Running: true, Pid: 0 };
    await this.store.save(c);
    const timer = setTimeout(() => {
      this.restartTimers.delete(id);
      void this.locks
        .run(id, async () => {
          const cur = this.store.get(id);
          if (!cur || cur.state.Status !== 'restarting' || this.removing.has(id)) return;
          cur.restartCount++;
          try {
            await this.startLocked(cur, true);
          } catch (err) {
            this.log.warn('restart failed', { id: shortId(id), error: errorMessage(err) });
            if (this.shouldRestart(cur, cur.state.ExitCode)) await this.scheduleRestart(cur, 0);
          }
        })
        .catch((err) => this.log.error('restarting a container failed', { id: shortId(id), error: err as Error }));
    }, delay);
    timer.unref();
    this.restartTimers.set(id, timer);
  }

  /** A stop or removal during the back-off: no more restarts; the container is exited. */
  private async cancelRestart(c: ContainerRecord): Promise<boolean> {
    const timer = this.restartTimers.get(c.id);
    if (timer) clearTimeout(timer);
    this.restartTimers.delete(c.id);
    if (c.state.Status !== 'restarting') return false;
    c.state = { ...c.state, Status: 'exited', Restarting: false, Running: false };
    await this.store.save(c);
    this.signals.emit(`exit:${c.id}`, c.state.ExitCode);
    return true;
  }

  /** Per-container activities that end with the process (set by the composition root). */
  onStarted: (c: ContainerRecord) => void = () => {};
  onStopped: (c: ContainerRecord) => void = () => {};

  /**
   * Detaches the container's root filesystem; the overlay ends (and syncs the
   * upper filesystem) in the background. Its next mount waits for that.
   */
  private unmountRootfs(id: string): void {
    this.holdRootfs(id, unmountDetached(this.rootfs(id)));
  }

  /**
   * Something keeps the container's overlay alive until `until` settles (the
   * detached mount's last descriptor, or a root opened for `docker cp`): a new
   * overlay of the same upper directory must not be mounted before.
   */
  private holdRootfs(id: string, until: Promise<unknown>): void {
    const all = Promise.all([this.rootfsReleases.get(id), until]).then(
      () => {},
      () => {},
    );
    this.rootfsReleases.set(id, all);
    void all.then(() => {
      if (this.rootfsReleases.get(id) === all) this.rootfsReleases.delete(id);
    });
  }

  /** Mounts the container's layers on its rootfs (after any earlier overlay of them ended). */
  private async mountRootfs(id: string): Promise<string> {
    const rootfs = this.rootfs(id);
    fs.mkdirSync(rootfs, { recursive: true, mode: 0o755 }); // a directory entry: no thread-pool round trip
    this.unmountRootfs(id); // a mount left behind by a crash
    const overlay = await this.snapshots.mounts(id);
    await this.rootfsReleases.get(id);
    native().mount('overlay', rootfs, 'overlay', 0, overlayOptions(overlay));
    return rootfs;
  }

  /** Resolves when the container leaves the running state (or at once if it is not running). */
  private waitExit(id: string, timeoutMs?: number): Promise<boolean> {
    const c = this.store.get(id);
    if (!c || !(c.state.Running || c.state.Status === 'restarting')) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        this.signals.off(`exit:${id}`, done);
        this.signals.off(`removed:${id}`, done);
        resolve(true);
      };
      this.signals.on(`exit:${id}`, done);
      this.signals.on(`removed:${id}`, done);
      if (timeoutMs !== undefined && timeoutMs >= 0) {
        timer = setTimeout(() => {
          this.signals.off(`exit:${id}`, done);
          this.signals.off(`removed:${id}`, done);
          resolve(false);
        }, timeoutMs);
      }
    });
  }

  // ---- stop, kill, restart, pause ------------------------------------------

  /**
   * Signals the container's init process. PIDs are reused quickly (pid_max
   * may be 32768), so the pid must still be in this container's cgroup.
   */
  private signalProcess(c: ContainerRecord, sig: NodeJS.Signals): void {
    const pid = c.state.Pid;
    if (!pidBelongsTo(pid, c.id)) return;
    try {
      process.kill(pid, sig);
    } catch (err) {
      if (errnoCode(err) !== 'ESRCH') throw err;
    }
  }

  async stop(input: string, options: { timeout?: number; signal?: string } = {}): Promise<void> {
    const c = this.resolve(input);
    if (c.state.Status === 'restarting') {
      c.manuallyStopped = true;
      await this.locks.run(c.id, () => this.cancelRestart(c));
      this.events.publish('container', 'stop', c.id, this.eventAttributes(c));
      return;
    }
    if (!c.state.Running) throw notModified();
    const sig = parseSignal(options.signal || c.config.StopSignal || 'SIGTERM');
    const timeout = options.timeout ?? c.config.StopTimeout ?? 10;
    c.manuallyStopped = true;
    await this.store.save(c);
    if (c.state.Paused) await this.unpause(c.id).catch(() => {});
    this.signalProcess(c, sig);
    const exited = await this.waitExit(c.id, timeout < 0 ? undefined : timeout * 1000);
    if (!exited) {
      this.log.info('container did not stop in time; killing', { id: shortId(c.id), timeout });
      this.signalProcess(c, 'SIGKILL');
      if (!(await this.waitExit(c.id, 30_000))) throw internal(`container ${shortId(c.id)} did not exit after SIGKILL`);
    }
    this.events.publish('container', 'stop', c.id, this.eventAttributes(c));
  }

  async kill(input: string, signal = 'SIGKILL'): Promise<void> {
    const c = this.resolve(input);
    const sig = parseSignal(signal);
    if (!c.state.Running) throw conflict(`Cannot kill container: ${input}: Container ${c.id} is not running`);
    if (c.state.Restarting) throw conflict(`Cannot kill container: ${input}: Container ${c.id} is restarting, wait until the container is running`);
    if (sig === 'SIGKILL') {
      c.manuallyStopped = true;
      await this.store.save(c);
    }
    this.signalProcess(c, sig);
    if (c.state.Paused && sig === 'SIGKILL') await this.unpause(c.id).catch(() => {});
    this.events.publish('container', 'kill', c.id, this.eventAttributes(c, { signal: String(signalNumber(sig)) }));
    if (sig === 'SIGKILL') await this.waitExit(c.id, 10_000);
  }

  async restart(input: string, options: { timeout?: number; signal?: string } = {}): Promise<void> {
    const c = this.resolve(input);
    if (c.state.Running) {
      await this.stop(c.id, options).catch((err) => {
        if (!(err instanceof Error && 'kind' in err && (err as { kind: string }).kind === 'NotModified')) throw err;
      });
    }
    await this.start(c.id);
    this.events.publish('container', 'restart', c.id, this.eventAttributes(c));
  }

  /**
   * docker top: the host's `ps` (default -ef) restricted to the container's
   * processes, parsed as Docker does (moby's parsePSOutput).
   */
  async top(input: string, psArgs = '-ef'): Promise<{ Titles: string[]; Processes: string[][] }> {
    const c = this.resolve(input);
    if (!c.state.Running) throw conflict(`Container ${c.id} is not running`);
    if (c.state.Restarting) throw conflict(`Container ${c.id} is restarting, wait until the container is running`);
    for (const m of psArgs.matchAll(/\s+([^\s]*)=\s*(PID[^\s]*)/g)) {
      if (m[1] !== m[2]) throw invalidArgument(`specifying "${m[1]}=${m[2]}" is not allowed`);
    }
    const pids = new Set(await this.runtime.runc.ps(c.id));
    const r = await run('ps', psArgs.split(/[ \t\n\r\v\f]+/).filter(Boolean));
    if (r.code !== 0) throw internal(`ps: ${r.stderr.trim() || `exit status ${r.code}`}`);
    const lines = r.stdout.split('\n');
    const fields = (line: string): string[] => line.split(/[ \t\n\r\v\f]+/).filter(Boolean);
    const titles = fields(lines[0] ?? '');
    const pidIndex = titles.indexOf('PID');
    if (pidIndex < 0) throw internal("Couldn't find PID field in ps output");
    const processes: string[][] = [];
    let previousInContainer = false;
    const add = (f: string[]): void => {
      processes.push([...f.slice(0, titles.length - 1), f.slice(titles.length - 1).join(' ')]);
    };
    for (const line of lines.slice(1)) {
      if (!line) continue;
      const f = fields(line);
      // thread lines (ps -m) carry "-" and belong to the process above
      if (f[pidIndex] === '-') {
        if (previousInContainer) add(f);
        continue;
      }
      const pid = Number(f[pidIndex]);
      if (!Number.isInteger(pid)) throw internal(`Unexpected pid '${f[pidIndex]}'`);
      previousInContainer = pids.has(pid);
      if (previousInContainer) add(f);
    }
    return { Titles: titles, Processes: processes };
  }

  async pause(input: string): Promise<void> {
    const c = this.resolve(input);
    await this.locks.run(c.id, async () => {
      if (!c.state.Running) throw conflict(`Container ${c.id} is not running`);
      if (c.state.Paused) throw conflict(`Container ${c.id} is already paused`);
      await this.runtime.runc.pause(c.id);
      c.state = { ...c.state, Paused: true, Status: 'paused' };
      await this.store.save(c);
    });
    this.events.publish('container', 'pause', c.id, this.eventAttributes(c));
  }

  async unpause(input: string): Promise<void> {
    const c = this.resolve(input);
    await this.locks.run(c.id, async () => {
      if (!c.state.Paused) throw conflict(`Container ${c.id} is not paused`);
      await this.runtime.runc.resume(c.id);
      c.state = { ...c.state, Paused: false, Status: c.state.Running ? 'running' : c.state.Status };
      await this.store.save(c);
    });
    this.events.publish('container', 'unpause', c.id, this.eventAttributes(c));
  }

  /**
   * docker update: new resource limits (applied to a running container's
   * cgroups through runc) and restart policy, validated as at create.
   */
  async update(input: string, changes: Partial<HostConfig>): Promise<{ Warnings: string[] | null }> {
    const c = this.resolve(input);
    await this.locks.run(c.id, async () => {
      const next = mergeUpdate(c.hostConfig, changes);
      validateHostConfig(next);
      if (c.state.Running && !c.state.Restarting) {
        const resources = {
          memory: {
            ...(next.Memory > 0 ? { limit: next.Memory } : {}),
            ...(next.MemoryReservation > 0 ? { reservation: next.MemoryReservation } : {}),
            ...(next.MemorySwap !== 0 ? { swap: next.MemorySwap } : {}),
          },
          cpu: {
            ...(next.CpuShares > 0 ? { shares: next.CpuShares } : {}),
            ...(next.NanoCpus > 0 ? { period: 100000, quota: Math.floor((next.NanoCpus * 100000) / 1e9) } : {}),
            ...(next.NanoCpus === 0 && next.CpuQuota !== 0 ? { quota: next.CpuQuota } : {}),
            ...(next.NanoCpus === 0 && next.CpuPeriod > 0 ? { period: next.CpuPeriod } : {}),
            ...(next.CpusetCpus ? { cpus: next.CpusetCpus } : {}),
            ...(next.CpusetMems ? { mems: next.CpusetMems } : {}),
          },
          ...(next.PidsLimit !== null && next.PidsLimit !== undefined && changes.PidsLimit !== undefined ? { pids: { limit: next.PidsLimit > 0 ? next.PidsLimit : -1 } } : {}),
          ...(next.BlkioWeight > 0 ? { blockIO: { weight: next.BlkioWeight } } : {}),
        };
        await this.runtime.runc.update(c.id, resources).catch((err) => {
          throw invalidArgument(`Cannot update container ${c.id}: ${errorMessage(err)}`);
        });
      }
      c.hostConfig = next;
      await this.store.save(c);
    });
    this.events.publish('container', 'update', c.id, this.eventAttributes(c));
    return { Warnings: null };
  }

  // ---- rename, remove, wait ----------------------------------------------

  async rename(input: string, newName: string): Promise<void> {
    const c = this.resolve(input);
    if (!newName) throw invalidArgument('Neither old nor new names may be empty');
    const name = validateName(newName);
    await this.nameLock.run(async () => {
      if (name === c.name) throw invalidArgument(`Renaming a container with the same name as its current name`);
      const holder = this.store.byName(name);
      if (holder) {
        throw conflict(
          `Conflict. The container name "/${name}" is already in use by container "${holder.id}". You have to remove (or rename) that container to be able to reuse that name.`,
        );
      }
      const oldName = c.name;
      await this.locks.run(c.id, async () => {
        c.name = name;
        await this.store.save(c);
      });
      this.events.publish('container', 'rename', c.id, this.eventAttributes(c, { oldName: `/${oldName}` }));
    });
  }

  async remove(input: string, options: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const c = this.resolve(input);
    if (c.state.Status === 'restarting' && !options.force) {
      throw conflict(`cannot remove container "/${c.name}": container is restarting: stop the container before removing or force remove`);
    }
    if (options.force) {
      // from here on no restart policy brings it back, whatever exits meanwhile
      this.removing.add(c.id);
      await this.locks.run(c.id, () => this.cancelRestart(c));
    }
    try {
      await this.removeStopped(c, options);
    } finally {
      this.removing.delete(c.id);
    }
  }

  private async removeStopped(c: ContainerRecord, options: { force?: boolean; volumes?: boolean }): Promise<void> {
    if (c.state.Running) {
      if (!options.force) {
        const what = c.state.Paused ? 'paused' : 'running';
        throw conflict(
          `cannot remove container "/${c.name}": container is ${what}: stop the container before removing or force remove`,
        );
      }
      c.manuallyStopped = true;
      this.signalProcess(c, 'SIGKILL');
      if (c.state.Paused) await this.runtime.runc.resume(c.id).catch(() => {});
      if (!(await this.waitExit(c.id, 30_000))) throw internal(`could not kill container ${shortId(c.id)}`);
    }
    await this.locks.run(c.id, async () => {
      const cur = this.store.get(c.id);
      if (!cur) return; // auto-removed meanwhile
      if (cur.state.Status === 'restarting') await this.cancelRestart(cur);
      if (cur.state.Running) throw conflict(`container ${shortId(c.id)} started again while being removed`);
      await this.removeLocked(cur, options.volumes ?? false);
    });
  }

  private async removeLocked(c: ContainerRecord, removeVolumes = false): Promise<void> {
    const id = c.id;
    this.restartDelays.delete(id);
    this.attachHub.closeAll(id);
    this.unwatchLogs(id);
    this.unmountRootfs(id);
    // the record's directory rename is the commit point; a writable layer
    // left without a record is swept at the next start
    await this.store.delete(id);
    await this.snapshots.remove(id);
    void fsp.rm(this.bundle(id), { recursive: true, force: true }).catch(() => {});
    // `rm -v` and `run --rm` take the container's anonymous volumes with it
    if (removeVolumes || c.hostConfig.AutoRemove) await this.mountsHelper?.removeAnonymous(c);
    this.onRemoved(id);
    this.events.publish('container', 'destroy', id, this.eventAttributes(c));
    this.signals.emit(`removed:${id}`);
  }

  /**
   * Waits for a condition. `ready` is called once the waiter is registered,
   * so the caller can flush response headers before anything can happen.
   */
  async wait(input: string, condition: WaitCondition, abort?: AbortSignal): Promise<{ StatusCode: number; Error: { Message: string } | null }> {
    const c = this.resolve(input);
    const id = c.id;
    const current = (): { StatusCode: number; Error: { Message: string } | null } => {
      const cur = this.store.get(id) ?? c;
      // Docker's CLI reports a non-null Error as a failed wait; a start error is reported by start itself.
      return { StatusCode: cur.state.ExitCode, Error: null };
    };
    if (condition === 'not-running' && !c.state.Running && c.state.Status !== 'restarting') return current();
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        this.signals.off(`exit:${id}`, onExit);
        this.signals.off(`removed:${id}`, onRemoved);
        abort?.removeEventListener('abort', onAbort);
      };
      const onExit = (code: number): void => {
        if (condition === 'removed') return;
        cleanup();
        const r = current();
        resolve({ ...r, StatusCode: code });
      };
      const onRemoved = (): void => {
        cleanup();
        resolve(current());
      };
      const onAbort = (): void => {
        cleanup();
        reject(new Error('wait aborted'));
      };
      this.signals.on(`exit:${id}`, onExit);
      this.signals.on(`removed:${id}`, onRemoved);
      abort?.addEventListener('abort', onAbort);
    });
  }

  // ---- attach and logs -------------------------------------------------------

  attach(input: string, client: AttachClient): void {
    const c = this.resolve(input);
    if (c.state.Paused) throw conflict('You cannot attach to a paused container, unpause it first');
    if (c.state.Restarting) throw conflict('You cannot attach to a restarting container, wait until it is running');
    if (c.state.Running) {
      AttachHub.connect(client, this.runtime.attach(this.bundle(c.id)));
    } else {
      this.attachHub.wait(c.id, client);
    }
  }

  /**
   * Streams log entries to emit (with follow, then what the container writes
   * until it stops); resolves when done or the signal aborts. `opened` is
   * called once the log is open: a client told the stream has begun may
   * remove the container next (docker-py's run), and what was written is read
   * all the same.
   */
  async logs(input: string, q: LogQuery, emit: (e: LogEntry) => Promise<void> | void, abort: AbortSignal, opened?: () => void): Promise<void> {
    const c = this.resolve(input);
    if (c.hostConfig.LogConfig.Type === 'none') {
      throw invalidArgument('configured logging driver does not support reading');
    }
    const dir = this.dir(c.id);
    const startedRunning = c.state.Running;
    // follow goes on where the read stopped (tail 0: from the end), in the same
    // open file, not from the end at that later moment: output written in
    // between would be lost
    const handover: LogHandover | undefined = q.follow && startedRunning ? {} : undefined;
    try {
      const entries = await readLogs(dir, c.logMaxFiles, q, handover);
      opened?.();
      for (const e of entries) {
        if (abort.aborted) return;
        await emit(e);
      }
      if (!handover) return;
      const from = { ...handover };
      handover.handle = undefined; // followLogs owns it now
      await followLogs(dir, q, emit, () => !(this.store.get(c.id)?.state.Running ?? false), abort, from);
    } finally {
      await handover?.handle?.close();
    }
  }

  /** Resizes the container's tty. */
  async resize(input: string, height: number, width: number): Promise<void> {
    const c = this.resolve(input);
    if (!c.state.Running) throw conflict(`Container ${c.id} is not running`);
    if (!c.config.Tty) return;
    await this.runtime.resize(this.bundle(c.id), height, width);
  }

  // ---- views ---------------------------------------------------------------

  async list(options: { all?: boolean; limit?: number; size?: boolean; filters: Filters }): Promise<ContainerSummary[]> {
    const f = options.filters;
    for (const k of f.keys()) if (!LIST_FILTERS.includes(k)) throw invalidArgument(`invalid filter '${k}'`);
    for (const s of f.get('status')) {
      if (!STATUSES.includes(s)) throw invalidArgument(`invalid filter 'status=${s}'`);
    }
    let all = options.all ?? false;
    if (options.limit && options.limit > 0) all = true;
    if (f.has('status') || f.has('exited')) all = true;
    const ancestors = f.get('ancestor').map((a) => this.images.tryResolve(a)?.id ?? a);
    let before: ContainerRecord | undefined;
    let since: ContainerRecord | undefined;
    if (f.has('before')) before = this.resolve(f.get('before')[0]);
    if (f.has('since')) since = this.resolve(f.get('since')[0]);

    let list = this.store.all().sort((a, b) => Date.parse(b.created) - Date.parse(a.created) || (a.id < b.id ? 1 : -1));
    list = list.filter((c) => {
      if (!all && !c.state.Running) return false;
      if (!f.matchAny('id', (v) => c.id.startsWith(v))) return false;
      if (!f.matchAny('name', (v) => safeRegex(v).test(`/${c.name}`) || safeRegex(v).test(c.name))) return false;
      if (!f.matchLabels(c.config.Labels)) return false;
      if (!f.matchAny('status', (v) => v === c.state.Status)) return false;
      if (!f.matchAny('exited', (v) => c.state.Status === 'exited' && Number(v) === c.state.ExitCode)) return false;
      if (f.has('exited') && c.state.Status !== 'exited') return false;
      if (ancestors.length && !ancestors.some((a) => a === c.image || a === c.config.Image)) return false;
      if (before && Date.parse(c.created) >= Date.parse(before.created)) return false;
      if (since && Date.parse(c.created) <= Date.parse(since.created)) return false;
      if (!f.matchAny('health', (v) => (c.state.Health?.Status ?? 'none') === v)) return false;
      if (!f.matchAny('is-task', (v) => v === 'false')) return false;
      if (!f.matchAny('network', (v) => v in c.networkSettings.Networks || v === c.hostConfig.NetworkMode)) return false;
      if (!f.matchAny('volume', (v) => c.mounts.some((m) => m.Name === v || m.Destination === v))) return false;
      return true;
    });
    if (options.limit && options.limit > 0) list = list.slice(0, options.limit);
    const out: ContainerSummary[] = [];
    for (const c of list) {
      const s: ContainerSummary = {
        Id: c.id,
        Names: [`/${c.name}`],
        Image: this.imageDisplayName(c),
        ImageID: c.image,
        Command: [c.path, ...c.args].join(' '),
        Created: Math.floor(Date.parse(c.created) / 1000),
        Ports: c.state.Running ? summaryPorts(c) : [],
        Labels: c.config.Labels ?? {},
        State: c.state.Status,
        Status: statusText(c),
        HostConfig: { NetworkMode: c.hostConfig.NetworkMode },
        NetworkSettings: { Networks: c.networkSettings.Networks },
        Mounts: c.mounts,
      };
      if (options.size) {
        s.SizeRw = await this.snapshots.usage(c.id);
        s.SizeRootFs = s.SizeRw + (this.images.store.get(c.image)?.size ?? 0);
      }
      out.push(s);
    }
    return out;
  }

  /** The image name as created, or its ID once that name moved elsewhere. */
  private imageDisplayName(c: ContainerRecord): string {
    const img = this.images.tryResolve(c.config.Image);
    if (img && img.id === c.image) return c.config.Image;
    return c.image;
  }

  async inspect(input: string, size = false): Promise<Record<string, unknown>> {
    const c = this.resolve(input);
    const dir = this.dir(c.id);
    let lower = '';
    try {
      lower = (await this.snapshots.mounts(c.id)).lowerDirs.join(':');
    } catch {
      // snapshot gone: container being removed
    }
    const result: Record<string, unknown> = {
      Id: c.id,
      Created: c.created,
      Path: c.path,
      Args: c.args,
      State: c.state,
      Image: c.image,
      ResolvConfPath: path.join(dir, 'resolv.conf'),
      HostnamePath: path.join(dir, 'hostname'),
      HostsPath: path.join(dir, 'hosts'),
      LogPath: c.hostConfig.LogConfig.Type === 'none' ? '' : path.join(dir, LOG_FILE),
      Name: `/${c.name}`,
      RestartCount: c.restartCount,
      Driver: 'overlay2',
      Platform: 'linux',
      MountLabel: '',
      ProcessLabel: '',
      AppArmorProfile: '',
      ExecIDs: this.execIds(c.id).length ? this.execIds(c.id) : null,
      HostConfig: c.hostConfig,
      GraphDriver: {
        Name: 'overlay2',
        Data: {
          LowerDir: lower,
          UpperDir: path.join(this.config.dataRoot, 'snapshots', 'active', c.id, 'upper'),
          WorkDir: path.join(this.config.dataRoot, 'snapshots', 'active', c.id, 'work'),
          MergedDir: this.rootfs(c.id),
        },
      },
      Mounts: c.mounts,
      Config: c.config,
      NetworkSettings: this.networkSettingsView(c),
    };
    if (size) {
      const rw = await this.snapshots.usage(c.id);
      result.SizeRw = rw;
      result.SizeRootFs = rw + (this.images.store.get(c.image)?.size ?? 0);
    }
    return result;
  }

  private networkSettingsView(c: ContainerRecord): Record<string, unknown> {
    // the top-level fields describe the default bridge only, as in Docker
    const primary = c.networkSettings.Networks.bridge;
    return {
      Bridge: '',
      SandboxID: c.state.Running ? c.id : '',
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      Ports: c.networkSettings.Ports,
      SandboxKey: c.networkSettings.SandboxKey,
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: primary?.EndpointID ?? '',
      Gateway: primary?.Gateway ?? '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      IPAddress: primary?.IPAddress ?? '',
      IPPrefixLen: primary?.IPPrefixLen ?? 0,
      IPv6Gateway: '',
      MacAddress: primary?.MacAddress ?? '',
      Networks: c.networkSettings.Networks,
    };
  }

  async prune(filters: Filters): Promise<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }> {
    for (const k of filters.keys()) if (k !== 'until' && k !== 'label' && k !== 'label!') throw invalidArgument(`invalid filter '${k}'`);
    let until: number | undefined;
    if (filters.has('until')) {
      const v = filters.get('until')[0];
      until = /^\d+(\.\d+)?$/.test(v) ? Number(v) * 1000 : Date.parse(v);
      if (Number.isNaN(until)) throw invalidArgument(`invalid filter 'until=${v}'`);
    }
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const c of this.store.all()) {
      if (c.state.Running || c.state.Status === 'restarting' || c.state.Status === 'removing') continue;
      if (!filters.matchLabels(c.config.Labels)) continue;
      if (filters.has('label!') && !filters.get('label!').every((l) => !matchesLabel(c.config.Labels, l))) continue;
      if (until !== undefined && Date.parse(c.created) >= until) continue;
      reclaimed += await this.snapshots.usage(c.id);
      await this.remove(c.id).catch((err) => this.log.warn('prune: remove failed', { id: shortId(c.id), error: err as Error }));
      deleted.push(c.id);
    }
    return { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
  }

  // ---- file and process access (cp, top, diff, stats) ----------------------

  /**
   * Runs fn with the container's filesystem open: the root (the rootfs
   * mount of a running container, or a temporary mount of a stopped one)
   * and what is mounted over it. A stopped container stays locked for the
   * whole of fn, so it cannot start (or go) meanwhile; a running one is
   * locked only while its root is opened: the open root keeps working even
   * if the container exits meanwhile.
   */
  async withFilesystem<T>(input: string, fn: (view: FilesystemView, c: ContainerRecord) => Promise<T>): Promise<T> {
    const c = this.resolve(input);
    const rootfs = this.rootfs(c.id);
    const openRoot = (): Promise<fsp.FileHandle> => fsp.open(rootfs, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    const running = await this.locks.run(c.id, async () => {
      if (!this.store.get(c.id)) throw notFound(`No such container: ${input}`);
      if (!c.state.Running) return undefined;
      const root = await openRoot();
      // the open root keeps this overlay alive even if the container exits meanwhile
      let closed!: () => void;
      this.holdRootfs(c.id, new Promise<void>((resolve) => (closed = resolve)));
      return { root, closed };
    });
    if (running) {
      try {
        return await fn(this.filesystemView(c, running.root), c);
      } finally {
        await running.root.close().finally(running.closed);
      }
    }
    return this.locks.run(c.id, async () => {
      if (!this.store.get(c.id)) throw notFound(`No such container: ${input}`);
      if (c.state.Running) throw conflict(`container ${shortId(c.id)} started meanwhile; try again`);
      if (c.state.Status === 'removing' || c.state.Status === 'dead') throw conflict(`container ${shortId(c.id)} is being removed`);
      await this.mountRootfs(c.id);
      try {
        const root = await openRoot();
        try {
          return await fn(this.filesystemView(c, root), c);
        } finally {
          await root.close();
        }
      } finally {
        this.unmountRootfs(c.id);
      }
    });
  }

  private filesystemView(c: ContainerRecord, root: fsp.FileHandle): FilesystemView {
    const mounts: FsMount[] = [];
    for (const m of c.mounts) {
      if (m.Type === 'tmpfs' || !m.Source) continue; // lives only inside the container's namespace
      let isDir = true;
      try {
        isDir = fs.statSync(m.Source).isDirectory();
      } catch {
        // gone from the host: lookups below it fail as "not found"
      }
      mounts.push({ destination: m.Destination, source: m.Source, readOnly: !m.RW, kind: isDir ? m.Type : 'file' });
    }
    // /etc files berthd bind-mounts (a container sharing another's network uses that one's)
    if (!c.hostConfig.NetworkMode.startsWith('container:')) {
      for (const name of ['hostname', 'hosts', 'resolv.conf']) {
        const source = path.join(this.dir(c.id), name);
        if (fs.existsSync(source)) mounts.push({ destination: `/etc/${name}`, source, readOnly: false, kind: 'file' });
      }
    }
    return { root, mounts, readonlyRootfs: c.hostConfig.ReadonlyRootfs ?? false };
  }

  /** The directories of a container's writable layer: upper, and the image's layers topmost first. */
  async writableLayer(input: string): Promise<{ container: ContainerRecord; upper: string; lowers: string[] }> {
    const c = this.resolve(input);
    const m = await this.snapshots.mounts(c.id);
    return { container: c, upper: m.upperDir, lowers: m.lowerDirs };
  }
}

/**
 * docker update's merge: clients send every resource field, zero meaning
 * "unchanged" (PidsLimit: absent means unchanged), so only set ones apply.
 * Conflicting options are 409s, as in Docker.
 */
function mergeUpdate(current: HostConfig, u: Partial<HostConfig>): HostConfig {
  const next: HostConfig = { ...current };
  const numeric = [
    'BlkioWeight', 'CpuShares', 'NanoCpus', 'CpuPeriod', 'CpuQuota', 'MemorySwap', 'MemoryReservation',
    'CpuRealtimePeriod', 'CpuRealtimeRuntime',
  ] as const;
  if (u.NanoCpus && (current.CpuQuota || current.CpuPeriod) && !u.CpuQuota && !u.CpuPeriod) {
    throw conflict('Conflicting options: Nano CPUs cannot be updated as CPU Period/Quota has already been set');
  }
  if ((u.CpuQuota || u.CpuPeriod) && current.NanoCpus && !u.NanoCpus) {
    throw conflict('Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set');
  }
  for (const k of numeric) {
    const v = u[k];
    if (typeof v === 'number' && v !== 0) (next as unknown as Record<string, number>)[k] = v;
  }
  if (u.CpusetCpus) next.CpusetCpus = u.CpusetCpus;
  if (u.CpusetMems) next.CpusetMems = u.CpusetMems;
  if (u.Memory) {
    if (u.Memory > current.MemorySwap && !u.MemorySwap) {
      throw conflict('Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time');
    }
    next.Memory = u.Memory;
  }
  if (u.PidsLimit !== undefined && u.PidsLimit !== null) next.PidsLimit = u.PidsLimit;
  if (u.RestartPolicy?.Name) {
    if (u.RestartPolicy.Name !== 'no' && current.AutoRemove) {
      throw conflict('Restart policy cannot be updated because AutoRemove is enabled for the container');
    }
    next.RestartPolicy = { Name: u.RestartPolicy.Name, MaximumRetryCount: u.RestartPolicy.MaximumRetryCount ?? 0 };
  }
  return next;
}

function matchesLabel(labels: Record<string, string> | undefined, expr: string): boolean {
  const l = labels ?? {};
  const i = expr.indexOf('=');
  return i === -1 ? expr in l : l[expr.slice(0, i)] === expr.slice(i + 1);
}

function safeRegex(pattern: string): RegExp {
  try {
    return new RegExp(pattern);
  } catch {
    return new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  }
}

/** True when pid is a process of the container (its cgroup path ends in the ID). */
export function pidBelongsTo(pid: number, containerId: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const cgroups = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    return cgroups.includes(`/${containerId}\n`) || cgroups.includes(`/${containerId}/`);
  } catch {
    return false;
  }
}

/** The `Ports` of a `ps` entry: published ports with their host side, exposed ones alone. */
function summaryPorts(c: ContainerRecord): ContainerSummary['Ports'] {
  const out: ContainerSummary['Ports'] = [];
  for (const [key, bindings] of Object.entries(c.networkSettings.Ports ?? {})) {
    const [port, type] = key.split('/');
    if (!bindings || bindings.length === 0) out.push({ PrivatePort: Number(port), Type: type });
    else for (const b of bindings) out.push({ IP: b.HostIp, PrivatePort: Number(port), PublicPort: Number(b.HostPort), Type: type });
  }
  return out;
}

/** The `Status` column of `docker ps`. */
export function statusText(c: ContainerRecord): string {
  const s = c.state;
  const now = Date.now();
  switch (s.Status) {
    case 'created':
      return 'Created';
    case 'running': {
      let t = `Up ${humanDuration(now - Date.parse(s.StartedAt))}`;
      if (s.Health && s.Health.Status !== 'none') t += ` (${s.Health.Status === 'starting' ? 'health: starting' : s.Health.Status})`;
      return t;
    }
    case 'paused':
      return `Up ${humanDuration(now - Date.parse(s.StartedAt))} (Paused)`;
    case 'restarting':
      return `Restarting (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    case 'exited':
      if (s.FinishedAt === ZERO_TIME) return 'Exited';
      return `Exited (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
  }
}
