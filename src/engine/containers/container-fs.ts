/**
 * A container's filesystem as the container sees it, reached from the host
 * without entering its namespaces: the root filesystem plus the volumes,
 * bind mounts and /etc files mounted over it, by destination (the deepest
 * destination that matches wins, as in the kernel's mount table).
 *
 * Containment: every lookup walks one component at a time through open
 * directory descriptors (`/proc/self/fd/N/name`, opened O_NOFOLLOW), and
 * resolves symlinks itself with the container's root as "/" (chroot or
 * openat2 RESOLVE_IN_ROOT semantics); ".." never climbs above the root. The
 * kernel never follows a symlink for us, so a process inside the container
 * that swaps a directory for `ln -s / x` while we walk gains nothing: we
 * end up somewhere inside the container, never on the host.
 */
import fs from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../../core/errdefs/index.js';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;
const MAX_SYMLINKS = 255;

/** Something mounted over the container's root filesystem. */
export interface FsMount {
  /** Absolute, clean path inside the container. */
  destination: string;
  /** Host path: a directory (volume, bind) or a file (bind of a file, /etc/hosts). */
  source: string;
  readOnly: boolean;
  kind: 'volume' | 'bind' | 'file';
}

/** What ContainerService hands out for file access: the open root and what is mounted over it. */
export interface FilesystemView {
  /** The container's root directory, open for the duration of the access. */
  root: FileHandle;
  mounts: FsMount[];
  readonlyRootfs: boolean;
}

/** A filesystem error with the errno code callers map to API errors. */
export class FsPathError extends Error {
  constructor(
    readonly code: 'ENOENT' | 'ENOTDIR' | 'ELOOP' | 'EBUSY' | 'EROFS',
    readonly containerPath: string,
    message?: string,
  ) {
    super(message ?? `${code}: ${containerPath}`);
  }
}

/** An open directory of the container. */
export class Dir {
  constructor(
    readonly handle: FileHandle,
    /** Its path inside the container. */
    readonly path: string,
    /** The mount it lives on (undefined: the root filesystem). */
    readonly mount: FsMount | undefined,
    /** True for the root and for mount roots: not a name in a parent we hold. */
    readonly isMountRoot: boolean,
  ) {}

  /** A host path naming the directory itself. */
  get self(): string {
    return `/proc/self/fd/${this.handle.fd}`;
  }

  /** A host path for a direct child: only `name` is looked up, in this very directory. */
  child(name: string): string {
    return `/proc/self/fd/${this.handle.fd}/${name}`;
  }

  childPath(name: string): string {
    return this.path === '/' ? `/${name}` : `${this.path}/${name}`;
  }
}

/** Where a path led. */
export type Location =
  /** The root or a mount's root directory. */
  | { kind: 'dir'; path: string; dir: Dir; stat: fs.Stats }
  /** A name in a directory; stat is undefined when nothing has that name. */
  | { kind: 'entry'; path: string; parent: Dir; name: string; stat: fs.Stats | undefined }
  /** A file mounted over the root (bind of a file, /etc/hosts...). */
  | { kind: 'file-mount'; path: string; mount: FsMount; stat: fs.Stats };

export interface ResolveOptions {
  /** Follow a symlink in the last component (a trailing "/" or "/." always does). */
  followFinal?: boolean;
  /** Create missing directories on the way (0755, root-owned), including the last component. */
  createDirs?: boolean;
  /** A missing directory on the way is not an error: the rest is appended as written. */
  lexicalMissing?: boolean;
}

/** Splits "a/b/" into components; tells whether the path asserts a directory ("x/", "x/."). */
export function pathComponents(p: string): { parts: string[]; assertsDir: boolean } {
  const raw = p.split('/');
  const last = raw[raw.length - 1];
  const assertsDir = raw.length > 1 && (last === '' || last === '.');
  return { parts: raw.filter((s) => s !== '' && s !== '.'), assertsDir };
}

export class ContainerFs {
  private readonly mounts = new Map<string, FsMount>();
  private readonly open = new Set<FileHandle>();
  private rootDir: Dir | undefined;

  private readonly readonlyRootfs: boolean;

  /** The view's root handle stays the caller's: close() leaves it open. */
  constructor(view: FilesystemView) {
    for (const m of view.mounts) this.mounts.set(m.destination, m);
    this.rootDir = new Dir(view.root, '/', undefined, true);
    this.readonlyRootfs = view.readonlyRootfs;
  }

  /** Whether entries may be created in dir (read-only mounts and a read-only rootfs refuse). */
  writable(dir: Dir): boolean {
    return dir.mount ? !dir.mount.readOnly : !this.readonlyRootfs;
  }

  get root(): Dir {
    if (!this.rootDir) throw new Error('container filesystem closed');
    return this.rootDir;
  }

  mountAt(containerPath: string): FsMount | undefined {
    return this.mounts.get(containerPath);
  }

  /** Closes every directory this view opened (not the root handle). */
  async close(): Promise<void> {
    const handles = [...this.open];
    this.open.clear();
    this.rootDir = undefined;
    await Promise.all(handles.map((h) => h.close().catch(() => {})));
  }

  /** Releases one directory opened by resolve/openChild (the root and repeated releases are fine). */
  async release(d: Dir | undefined): Promise<void> {
    if (!d || d === this.rootDir || !this.open.has(d.handle)) return;
    this.open.delete(d.handle);
    await d.handle.close().catch(() => {});
  }

  private async track(p: Promise<FileHandle>): Promise<FileHandle> {
    const h = await p;
    this.open.add(h);
    return h;
  }

  /**
   * Opens the child `name` of dir as a directory: the mount at that path if
   * there is one, else the directory itself, never through a symlink.
   */
  async openChild(dir: Dir, name: string): Promise<Dir> {
    const childPath = dir.childPath(name);
    const mount = this.mounts.get(childPath);
    if (mount) {
      if (mount.kind === 'file') throw new FsPathError('ENOTDIR', childPath);
      const h = await this.track(fsp.open(mount.source, O_RDONLY | O_DIRECTORY));
      return new Dir(h, childPath, mount, true);
    }
    try {
      const h = await this.track(fsp.open(dir.child(name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
      return new Dir(h, childPath, dir.mount, false);
    } catch (err) {
      const code = errnoCode(err);
      // ELOOP: it is a symlink (O_NOFOLLOW refused it)
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') throw new FsPathError(code === 'ELOOP' ? 'ENOTDIR' : code, childPath);
      throw err;
    }
  }

  /** lstat of a child, undefined when it does not exist. */
  async lstatChild(dir: Dir, name: string): Promise<fs.Stats | undefined> {
    try {
      return await fsp.lstat(dir.child(name));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Resolves a path inside the container. Symlinks on the way are followed
   * within the container; the last component is followed only if asked (or
   * the path ends in "/" or "/.").
   */
  async resolve(containerPath: string, options: ResolveOptions = {}): Promise<Location> {
    const { parts, assertsDir } = pathComponents(containerPath);
    const follow = options.followFinal || assertsDir;
    const queue = [...parts];
    const stack: Dir[] = [this.root];
    const opened: Dir[] = [];
    let links = 0;
    const top = (): Dir => stack[stack.length - 1];
    const finish = async (keep: Dir | undefined): Promise<void> => {
      for (const d of opened) if (d !== keep) await this.release(d);
    };
    try {
      while (queue.length) {
        const part = queue.shift()!;
        if (part === '..') {
          if (stack.length > 1) stack.pop();
          continue;
        }
        const isLast = queue.length === 0;
        const dir = top();
        const childPath = dir.childPath(part);
        const mount = this.mounts.get(childPath);
        if (mount?.kind === 'file') {
          if (!isLast) throw new FsPathError('ENOTDIR', childPath);
          const stat = await fsp.stat(mount.source);
          await finish(undefined);
          return { kind: 'file-mount', path: childPath, mount, stat };
        }
        if (mount) {
          const d = await this.openChild(dir, part);
          opened.push(d);
          stack.push(d);
          if (isLast) {
            const stat = await d.handle.stat();
            await finish(d);
            return { kind: 'dir', path: d.path, dir: d, stat };
          }
          continue;
        }
        let stat = await this.lstatChild(dir, part);
        if (!stat && options.createDirs) {
          if (!this.writable(dir)) throw new FsPathError('EROFS', childPath);
          await fsp.mkdir(dir.child(part), { mode: 0o755 }).catch((err) => {
            if (errnoCode(err) !== 'EEXIST') throw err;
          });
          stat = await this.lstatChild(dir, part);
        }
        if (!stat) {
          if (isLast) {
            await finish(dir);
            return { kind: 'entry', path: childPath, parent: dir, name: part, stat: undefined };
          }
          if (options.lexicalMissing) {
            const rest = path.posix.normalize([childPath, ...queue].join('/'));
            await finish(dir);
            return { kind: 'entry', path: rest, parent: dir, name: part, stat: undefined };
          }
          throw new FsPathError('ENOENT', childPath);
        }
        if (stat.isSymbolicLink() && (!isLast || follow)) {
          if (++links > MAX_SYMLINKS) throw new FsPathError('ELOOP', childPath, `too many levels of symbolic links: ${containerPath}`);
          const target = await fsp.readlink(dir.child(part));
          if (target.startsWith('/')) stack.length = 1;
          // an empty remainder ("/", ".") leaves us at the directory on top of the stack
          queue.unshift(...target.split('/').filter((s) => s !== '' && s !== '.'));
          continue;
        }
        if (isLast) {
          if (assertsDir && !stat.isDirectory()) throw new FsPathError('ENOTDIR', childPath);
          await finish(dir);
          return { kind: 'entry', path: childPath, parent: dir, name: part, stat };
        }
        if (!stat.isDirectory()) throw new FsPathError('ENOTDIR', childPath);
        const d = await this.openChild(dir, part);
        opened.push(d);
        stack.push(d);
      }
      // the path named a directory we hold: the root, or one reached by ".." or a link to a directory
      const d = top();
      if (d.isMountRoot) {
        await finish(d);
        return { kind: 'dir', path: d.path, dir: d, stat: await d.handle.stat() };
      }
      // a plain directory reached through "..": describe it as a name in its parent
      const parentPath = path.posix.dirname(d.path);
      const name = path.posix.basename(d.path);
      await finish(undefined);
      return this.resolve(parentPath === '/' ? `/${name}` : `${parentPath}/${name}`, { followFinal: false });
    } catch (err) {
      await finish(undefined);
      throw err;
    }
  }

  /** Opens what a location names as a directory (it must be one). */
  async openLocation(loc: Location): Promise<Dir> {
    if (loc.kind === 'dir') return loc.dir;
    if (loc.kind === 'file-mount' || !loc.stat?.isDirectory()) throw new FsPathError('ENOTDIR', loc.path);
    return this.openChild(loc.parent, loc.name);
  }

  /** The mount a location lives on (undefined: the root filesystem). */
  static mountOf(loc: Location): FsMount | undefined {
    if (loc.kind === 'file-mount') return loc.mount;
    if (loc.kind === 'dir') return loc.dir.mount;
    return loc.parent.mount;
  }

  /**
   * Removes a tree without ever following a symlink: directories are opened
   * O_NOFOLLOW and emptied through their descriptors, so a directory swapped
   * for a symlink meanwhile is unlinked as a link, not descended into.
   */
  async removeChild(dir: Dir, name: string): Promise<void> {
    const childPath = dir.childPath(name);
    if (this.mounts.has(childPath)) throw new FsPathError('EBUSY', childPath, `cannot remove mount point ${childPath}`);
    const stat = await this.lstatChild(dir, name);
    if (!stat) return;
    if (!stat.isDirectory()) {
      await fsp.unlink(dir.child(name));
      return;
    }
    const sub = await this.openChild(dir, name);
    try {
      for (const entry of await fsp.readdir(sub.self)) await this.removeChild(sub, entry);
    } finally {
      await this.release(sub);
    }
    await fsp.rmdir(dir.child(name));
  }
}
