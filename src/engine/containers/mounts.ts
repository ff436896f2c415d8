/**
 * A container's volumes, bind mounts and tmpfs: resolved at create (named
 * and anonymous volumes are created then, as Docker does), turned into OCI
 * mounts at start (with Docker's copy-up of the image's content into a new,
 * empty volume), and released when the container stops or goes.
 */
import fsp from 'node:fs/promises';
import type { HostConfig } from '../../api/types.js';
import type { ContainerRecord, MountPoint } from '../../core/containers/types.js';
import { errnoCode, invalidArgument } from '../../core/errdefs/index.js';
import { type MountRequest, fromMountSpec, fromTmpfs, parseBind, tmpfsMountOptions } from '../../core/volumes/mounts.js';
import { runChecked } from '../../util/proc.js';
import type { Logger } from '../../util/log.js';
import type { EventBus } from '../../core/events/bus.js';
import { secureJoin } from '../runtime/rootfs-path.js';
import type { OciMount } from '../runtime/spec.js';
import type { VolumeService } from '../volumes/volume-service.js';

export class ContainerMounts {
  constructor(
    private readonly volumes: VolumeService,
    private readonly containers: () => ContainerRecord[],
    private readonly log: Logger,
    private readonly events?: EventBus,
  ) {}

  /** IDs of containers (any state) that reference a volume. */
  usedBy(name: string): string[] {
    return this.containers()
      .filter((c) => (c.mountRequests ?? []).some((m) => m.type === 'volume' && m.source === name))
      .map((c) => c.id);
  }

  /**
   * The mounts a new container asks for, in Docker's precedence: volumes
   * from other containers, then the image's VOLUMEs, then -v/--mount/--tmpfs
   * (which may not name the same destination twice).
   */
  async resolve(hc: HostConfig, imageVolumes: Record<string, object> | null, lookup: (name: string) => ContainerRecord | undefined): Promise<MountRequest[]> {
    const byTarget = new Map<string, MountRequest>();
    for (const spec of hc.VolumesFrom ?? []) {
      const [name, mode] = spec.split(':');
      const other = lookup(name);
      if (!other) throw invalidArgument(`No such container: ${name}`);
      if (mode && mode !== 'ro' && mode !== 'rw') throw invalidArgument(`invalid mode for volumes-from: ${mode}`);
      for (const m of other.mountRequests ?? []) {
        if (m.type === 'tmpfs') continue;
        byTarget.set(m.target, { ...m, readOnly: mode ? mode === 'ro' : m.readOnly, createHostPath: false });
      }
    }
    for (const target of Object.keys(imageVolumes ?? {})) {
      const req = parseBind(target);
      if (!byTarget.has(req.target)) byTarget.set(req.target, req);
    }
    const user: MountRequest[] = [
      ...(hc.Binds ?? []).map(parseBind),
      ...(hc.Mounts ?? []).map(fromMountSpec),
      ...Object.entries(hc.Tmpfs ?? {}).map(([t, o]) => fromTmpfs(t, o)),
    ];
    const seen = new Set<string>();
    for (const m of user) {
      if (seen.has(m.target)) throw invalidArgument(`Duplicate mount point: ${m.target}`);
      seen.add(m.target);
      byTarget.set(m.target, m);
    }
    const requests = [...byTarget.values()];
    // check bind sources before creating anything
    for (const m of requests) {
      if (m.type !== 'bind') continue;
      try {
        await fsp.stat(m.source);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
        if (!m.createHostPath) throw invalidArgument(`invalid mount config for type "bind": bind source path does not exist: ${m.source}`);
      }
    }
    // volumes: named ones are created when missing, anonymous ones get a name
    const created: string[] = [];
    try {
      for (const m of requests) {
        if (m.type !== 'volume') continue;
        const anonymous = !m.source;
        const existed = m.source ? this.volumes.get(m.source) : undefined;
        const v = await this.volumes.create({ Name: m.source || undefined, DriverOpts: m.volumeDriverOpts, Labels: m.volumeLabels }, anonymous);
        if (!existed) created.push(v.name);
        m.source = v.name;
      }
    } catch (err) {
      for (const name of created) await this.volumes.remove(name, []).catch(() => {});
      throw err;
    }
    return requests;
  }

  /** Docker's inspect view of the mounts. */
  view(requests: MountRequest[]): MountPoint[] {
    return requests.map((m): MountPoint => {
      if (m.type === 'volume') {
        return { Type: 'volume', Name: m.source, Source: this.volumes.dataPath(m.source), Destination: m.target, Driver: 'local', Mode: m.mode === 'ro' || m.mode === 'rw' ? '' : m.mode, RW: !m.readOnly, Propagation: '' };
      }
      if (m.type === 'bind') {
        return { Type: 'bind', Source: m.source, Destination: m.target, Mode: m.mode, RW: !m.readOnly, Propagation: m.propagation ?? 'rprivate' };
      }
      return { Type: 'tmpfs', Source: '', Destination: m.target, Mode: m.mode, RW: !m.readOnly, Propagation: '' };
    });
  }

  /** At start: host-side preparation and the OCI mounts, in order of depth. */
  async prepare(c: ContainerRecord, rootfs: string): Promise<OciMount[]> {
    const out: OciMount[] = [];
    const requests = [...(c.mountRequests ?? [])].sort((a, b) => a.target.split('/').length - b.target.split('/').length);
    const acquired: string[] = [];
    try {
      for (const m of requests) {
        if (m.type === 'tmpfs') {
          out.push({ destination: m.target, type: 'tmpfs', source: 'tmpfs', options: tmpfsMountOptions(m) });
          continue;
        }
        let source: string;
        if (m.type === 'bind') {
          source = m.source;
          // -v creates a missing host directory, as Docker does
          await fsp.mkdir(source, { recursive: true }).catch((err) => {
            if (errnoCode(err) !== 'EEXIST') throw err;
          });
        } else {
          source = await this.volumes.acquire(m.source, c.id);
          acquired.push(m.source);
          if (!m.noCopy) await this.copyUp(rootfs, m.target, source);
        }
        const options = ['rbind', m.readOnly ? 'ro' : 'rw', m.propagation ?? 'rprivate'];
        out.push({ destination: m.target, type: 'bind', source, options });
        if (m.type === 'volume') {
          this.events?.publish('volume', 'mount', m.source, {
            container: c.id,
            destination: m.target,
            driver: 'local',
            propagation: m.propagation ?? '',
            'read/write': String(!m.readOnly),
          });
        }
      }
    } catch (err) {
      for (const name of acquired) await this.volumes.release(name, c.id).catch(() => {});
      throw err;
    }
    return out;
  }

  /**
   * A new, empty volume mounted where the image has content gets a copy of
   * it first (ownership, modes, times, xattrs kept; symlinks not followed).
   */
  private async copyUp(rootfs: string, target: string, volume: string): Promise<void> {
    const entries = await fsp.readdir(volume).catch(() => ['?']);
    if (entries.length > 0) return;
    const src = await secureJoin(rootfs, target);
    let st;
    try {
      st = await fsp.stat(src);
    } catch {
      return;
    }
    if (!st.isDirectory()) return;
    await runChecked('cp', ['-a', '--no-dereference', `${src}/.`, `${volume}/`]);
    this.log.debug('copied image content into volume', { target, volume });
  }

  /** After the container stopped: driver mounts of its volumes go. */
  async release(c: ContainerRecord): Promise<void> {
    for (const m of c.mountRequests ?? []) {
      if (m.type !== 'volume') continue;
      await this.volumes.release(m.source, c.id).catch(() => {});
      this.events?.publish('volume', 'unmount', m.source, { container: c.id, driver: 'local' });
    }
  }

  /** At daemon start: running containers hold their volumes' driver mounts. */
  adopt(c: ContainerRecord): void {
    for (const m of c.mountRequests ?? []) if (m.type === 'volume') this.volumes.adoptUser(m.source, c.id);
  }

  /** rm -v and --rm: the container's anonymous volumes, unless others use them. */
  async removeAnonymous(c: ContainerRecord): Promise<void> {
    for (const m of c.mountRequests ?? []) {
      if (m.type !== 'volume') continue;
      const v = this.volumes.get(m.source);
      if (!v || !v.anonymous) continue;
      const users = this.usedBy(v.name).filter((id) => id !== c.id);
      if (users.length) continue;
      await this.volumes.remove(v.name, []).catch((err) => this.log.warn('removing anonymous volume failed', { name: v.name, error: err as Error }));
    }
  }
}
