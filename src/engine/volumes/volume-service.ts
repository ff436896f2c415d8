/**
 * VolumeService: named and anonymous volumes of the "local" driver.
 *   <data-root>/volumes/<name>/_data     the data containers see
 *   <data-root>/volumes/volumes.json     records (atomic)
 * A volume created with `type`/`o`/`device` options (tmpfs, bind of a host
 * directory, a block device) is mounted on _data while a running container
 * uses it, reference counted, as Docker's local driver does.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { conflict, errnoCode, invalidArgument, notFound } from '../../core/errdefs/index.js';
import type { EventBus } from '../../core/events/bus.js';
import { Filters } from '../../core/filters.js';
import { VOLUME_NAME_RE, validateVolumeName } from '../../core/volumes/mounts.js';
import { readJsonFile, removeTempFiles, writeJsonAtomic } from '../../util/atomic-file.js';
import type { Logger } from '../../util/log.js';
import { KeyedMutex, Mutex } from '../../util/mutex.js';
import { rfc3339Nano } from '../../util/time.js';
import { diskUsage } from '../snapshots/overlay.js';
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, native, unmountDetached } from '../runtime/native.js';

export interface VolumeRecord {
  name: string;
  driver: 'local';
  created: string;
  labels: Record<string, string>;
  options: Record<string, string>;
  /** Created for one container without a name; pruned by default. */
  anonymous: boolean;
}

export interface CreateVolumeBody {
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string>;
  Labels?: Record<string, string>;
}

const LOCAL_OPTIONS = new Set(['type', 'o', 'device', 'size']);

const MOUNT_FLAGS: Record<string, number> = {
  ro: MS_RDONLY,
  nosuid: MS_NOSUID,
  nodev: MS_NODEV,
  noexec: MS_NOEXEC,
  bind: MS_BIND,
};

export class VolumeService {
  private volumes = new Map<string, VolumeRecord>();
  private readonly root: string;
  private readonly file: string;
  private readonly docLock = new Mutex();
  private readonly mountLocks = new KeyedMutex();
  /** Running containers holding each volume's driver mount. */
  private readonly mountUsers = new Map<string, Set<string>>();

  constructor(
    dataRoot: string,
    private readonly events: EventBus,
    private readonly log: Logger,
  ) {
    this.root = path.join(dataRoot, 'volumes');
    this.file = path.join(this.root, 'volumes.json');
  }

  async init(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true, mode: 0o701 });
    await removeTempFiles(this.root);
    const doc = await readJsonFile<{ volumes: VolumeRecord[] }>(this.file);
    for (const v of doc?.volumes ?? []) this.volumes.set(v.name, v);
    // a volume whose creation was cut short has a directory but no record
    for (const name of await fsp.readdir(this.root)) {
      if (name === 'volumes.json' || name.startsWith('.')) continue;
      if (!this.volumes.has(name)) await fsp.rm(path.join(this.root, name), { recursive: true, force: true });
    }
  }

  private async persist(): Promise<void> {
    await writeJsonAtomic(this.file, { volumes: [...this.volumes.values()] });
  }

  /** Host path of a volume's data; never outside the volumes directory. */
  dataPath(name: string): string {
    if (!VOLUME_NAME_RE.test(name)) throw invalidArgument(`invalid volume name ${name}`);
    return path.join(this.root, name, '_data');
  }

  get(name: string): VolumeRecord | undefined {
    return this.volumes.get(name);
  }

  resolve(name: string): VolumeRecord {
    const v = this.volumes.get(name);
    if (!v) throw notFound(`get ${name}: no such volume`);
    return v;
  }

  all(): VolumeRecord[] {
    return [...this.volumes.values()];
  }

  /** Creates a volume, or returns the existing one of that name (Docker's create is idempotent). */
  async create(body: CreateVolumeBody, anonymous = false): Promise<VolumeRecord> {
    const driver = body.Driver || 'local';
    if (driver !== 'local') throw notFound(`plugin "${driver}" not found`);
    const name = body.Name || crypto.randomBytes(32).toString('hex');
    validateVolumeName(name);
    const options = body.DriverOpts ?? {};
    for (const k of Object.keys(options)) {
      if (!LOCAL_OPTIONS.has(k)) throw invalidArgument(`invalid option key: "${k}"`);
    }
    if (options.type && !options.device && options.type !== 'tmpfs') throw invalidArgument('missing required option: "device"');
    if (options.device && options.o?.split(',').includes('bind')) {
      if (!options.device.startsWith('/')) throw invalidArgument(`invalid device for a bind volume: ${options.device} (must be absolute)`);
      if (!fs.existsSync(options.device)) throw invalidArgument(`failed to mount local volume: bind source path does not exist: ${options.device}`);
    }
    return this.docLock.run(async () => {
      const existing = this.volumes.get(name);
      if (existing) return existing;
      const rec: VolumeRecord = { name, driver: 'local', created: rfc3339Nano(), labels: body.Labels ?? {}, options, anonymous };
      // directory first (a crash leaves an orphan init() removes), record second
      await fsp.mkdir(path.join(this.root, name, '_data'), { recursive: true, mode: 0o755 });
      this.volumes.set(name, rec);
      try {
        await this.persist();
      } catch (err) {
        this.volumes.delete(name);
        throw err;
      }
      this.events.publish('volume', 'create', name, { driver: 'local' });
      return rec;
    });
  }

  /** Removes a volume no container references. */
  async remove(name: string, usedBy: string[], force = false): Promise<void> {
    const v = this.volumes.get(name);
    if (!v) {
      if (force) return;
      throw notFound(`get ${name}: no such volume`);
    }
    if (usedBy.length) throw conflict(`remove ${name}: volume is in use - [${usedBy.join(', ')}]`);
    await this.docLock.run(async () => {
      this.volumes.delete(name);
      await this.persist();
    });
    await this.unmountDriver(name).catch(() => {});
    const dir = path.join(this.root, name);
    const doomed = path.join(this.root, `.rm-${name}-${crypto.randomBytes(4).toString('hex')}`);
    await fsp.rename(dir, doomed).catch((err) => {
      if (errnoCode(err) !== 'ENOENT') throw err;
    });
    await fsp.rm(doomed, { recursive: true, force: true });
    this.events.publish('volume', 'destroy', name, { driver: 'local' });
  }

  /** Docker 23+: anonymous volumes only, unless all=true. */
  async prune(filters: Filters, usedBy: (name: string) => string[]): Promise<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }> {
    const all = filters.bool('all') ?? false;
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const v of this.all()) {
      if (usedBy(v.name).length) continue;
      if (!all && !v.anonymous) continue;
      if (!filters.matchLabels(v.labels)) continue;
      if (filters.has('label!') && filters.get('label!').some((l) => matchLabel(v.labels, l))) continue;
      reclaimed += await diskUsage(this.dataPath(v.name));
      await this.remove(v.name, []);
      deleted.push(v.name);
    }
    return { VolumesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
  }

  list(filters: Filters, usedBy: (name: string) => string[]): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const v of this.all()) {
      if (!filters.matchAny('name', (n) => v.name.includes(n))) continue;
      if (!filters.matchAny('driver', (d) => d === v.driver)) continue;
      if (!filters.matchLabels(v.labels)) continue;
      const dangling = filters.bool('dangling');
      if (dangling !== undefined && dangling !== (usedBy(v.name).length === 0)) continue;
      out.push(this.view(v));
    }
    return out.sort((a, b) => String(a.Name).localeCompare(String(b.Name)));
  }

  view(v: VolumeRecord, usage?: { Size: number; RefCount: number }): Record<string, unknown> {
    const created = new Date(v.created);
    return {
      CreatedAt: created.toISOString().replace(/\.\d+Z$/, 'Z'),
      Driver: v.driver,
      Labels: v.labels,
      Mountpoint: this.dataPath(v.name),
      Name: v.name,
      Options: Object.keys(v.options).length ? v.options : null,
      Scope: 'local',
      ...(usage ? { UsageData: usage } : {}),
    };
  }

  async usage(name: string, refCount: number): Promise<{ Size: number; RefCount: number }> {
    return { Size: await diskUsage(this.dataPath(name)), RefCount: refCount };
  }

  // ---- driver mounts (tmpfs, bind or device volumes) -------------------

  private needsMount(v: VolumeRecord): boolean {
    return Boolean(v.options.type || v.options.device);
  }

  /** Before a container using the volume starts: mount it if its options say so. */
  async acquire(name: string, containerId: string): Promise<string> {
    const v = this.resolve(name);
    const data = this.dataPath(name);
    if (!this.needsMount(v)) return data;
    await this.mountLocks.run(name, async () => {
      let users = this.mountUsers.get(name);
      if (!users) this.mountUsers.set(name, (users = new Set()));
      if (users.size === 0 && !isMountPoint(data)) {
        const { flags, data: mountData } = splitMountOptions(v.options.o ?? '');
        const type = v.options.type && v.options.type !== 'none' ? v.options.type : '';
        const device = v.options.device ?? (type === 'tmpfs' ? 'tmpfs' : '');
        try {
          native().mount(device, data, type, flags, mountData);
        } catch (err) {
          throw invalidArgument(`error while mounting volume '${data}': ${(err as Error).message}`);
        }
        this.events.publish('volume', 'mount', name, { driver: 'local', container: containerId });
      }
      users.add(containerId);
    });
    return data;
  }

  /** After a container using the volume stopped. */
  async release(name: string, containerId: string): Promise<void> {
    const v = this.volumes.get(name);
    if (!v || !this.needsMount(v)) return;
    await this.mountLocks.run(name, async () => {
      const users = this.mountUsers.get(name);
      users?.delete(containerId);
      if (!users || users.size === 0) await this.unmountDriver(name);
    });
  }

  /** At daemon start: running containers already hold these mounts. */
  adoptUser(name: string, containerId: string): void {
    let users = this.mountUsers.get(name);
    if (!users) this.mountUsers.set(name, (users = new Set()));
    users.add(containerId);
  }

  private async unmountDriver(name: string): Promise<void> {
    const data = this.dataPath(name);
    if (!isMountPoint(data)) return;
    try {
      // a disk filesystem syncs as it ends: on the thread pool, and under the
      // volume's mount lock, so a new mount or a removal waits for it
      await unmountDetached(data);
      this.events.publish('volume', 'unmount', name, { driver: 'local' });
    } catch (err) {
      this.log.warn('unmounting volume failed', { name, error: err as Error });
    }
  }
}

function matchLabel(labels: Record<string, string>, expr: string): boolean {
  const i = expr.indexOf('=');
  return i === -1 ? expr in labels : labels[expr.slice(0, i)] === expr.slice(i + 1);
}

/** "size=64m,uid=1000,ro" -> flags for mount(2) and the rest as data. */
export function splitMountOptions(o: string): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const opt of o.split(',').filter(Boolean)) {
    if (opt in MOUNT_FLAGS) flags |= MOUNT_FLAGS[opt];
    else if (opt === 'rw') continue;
    else data.push(opt);
  }
  return { flags, data: data.join(',') };
}

/** Whether something is mounted on p (a bind of the same filesystem has the same st_dev, so ask mountinfo). */
export function isMountPoint(p: string): boolean {
  try {
    const target = fs.realpathSync(p);
    return fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((line) => line.split(' ')[4] === target);
  } catch {
    return false;
  }
}
