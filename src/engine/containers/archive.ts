/**
 * `docker cp` on the daemon side (HEAD/GET/PUT /containers/{id}/archive):
 * the stat of a path, a tar of a path, and the extraction of a tar into a
 * directory of a running or stopped container, all through ContainerFs so
 * that nothing is read or written outside the container.
 *
 * Docker's semantics: a path is cleaned lexically first ("/../x" is "/x");
 * reading does not follow a symlink in the last component (the client
 * decides, with -L) and names the entries after the requested name; the
 * extraction point follows symlinks and must be a directory; entries keep
 * the archive's ownership, or take the container user's with copyUIDGID;
 * noOverwriteDirNonDir refuses to swap a directory for a non-directory
 * (and back).
 */
import fs from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type tar from 'tar-stream';
import { tarStream } from '../archive/tar-stream.js';
import type { ContainerRecord } from '../../core/containers/types.js';
import { BerthError, errnoCode, forbidden, internal, invalidArgument, notFound } from '../../core/errdefs/index.js';
import type { EventBus } from '../../core/events/bus.js';
import { rfc3339Nano } from '../../util/time.js';
import { decompressed } from '../archive/compression.js';
import { native, S_IFBLK, S_IFCHR, S_IFIFO } from '../runtime/native.js';
import { resolveUser } from '../runtime/user.js';
import { ContainerFs, type Dir, type FilesystemView, FsPathError, type Location } from './container-fs.js';

/** The X-Docker-Container-Path-Stat document. */
export interface PathStat {
  name: string;
  size: number;
  /** A Go os.FileMode: permission bits plus type bits (dir 1<<31, symlink 1<<27, ...). */
  mode: number;
  mtime: string;
  linkTarget: string;
}

export interface ExtractOptions {
  noOverwriteDirNonDir: boolean;
  copyUIDGID: boolean;
}

/** What the archive service needs from ContainerService. */
export interface ArchiveContainers {
  withFilesystem<T>(input: string, fn: (view: FilesystemView, c: ContainerRecord) => Promise<T>): Promise<T>;
  eventAttributes(c: ContainerRecord, extra?: Record<string, string>): Record<string, string>;
}

// Go's os.FileMode type bits
const MODE_DIR = 2 ** 31;
const MODE_SYMLINK = 2 ** 27;
const MODE_DEVICE = 2 ** 26;
const MODE_NAMED_PIPE = 2 ** 25;
const MODE_SOCKET = 2 ** 24;
const MODE_SETUID = 2 ** 23;
const MODE_SETGID = 2 ** 22;
const MODE_CHAR_DEVICE = 2 ** 21;
const MODE_STICKY = 2 ** 20;

/** A stat as Go's os.FileMode describes it. */
export function goFileMode(st: fs.Stats): number {
  let mode = st.mode & 0o777;
  if (st.mode & 0o4000) mode += MODE_SETUID;
  if (st.mode & 0o2000) mode += MODE_SETGID;
  if (st.mode & 0o1000) mode += MODE_STICKY;
  if (st.isDirectory()) mode += MODE_DIR;
  else if (st.isSymbolicLink()) mode += MODE_SYMLINK;
  else if (st.isFIFO()) mode += MODE_NAMED_PIPE;
  else if (st.isSocket()) mode += MODE_SOCKET;
  else if (st.isCharacterDevice()) mode += MODE_DEVICE + MODE_CHAR_DEVICE;
  else if (st.isBlockDevice()) mode += MODE_DEVICE;
  return mode;
}

/**
 * The absolute container path Docker works with: cleaned lexically, but a
 * trailing "/" or "/." is kept (it asks for a directory, or its contents).
 */
export function containerAbsPath(p: string): string {
  const clean = path.posix.resolve('/', p);
  const last = p.split('/').pop();
  if ((last === '.' || p === '.') && path.posix.basename(clean) !== '.') return clean === '/' ? '/.' : `${clean}/.`;
  if (p.endsWith('/') && clean !== '/') return `${clean}/`;
  return clean;
}

/** Go's filepath.Base: "/" for the root, trailing slashes ignored. */
export function goBase(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  if (trimmed === '') return p.startsWith('/') ? '/' : '.';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** Entry name of a child under an entry name, as Docker's rebase produces it. */
function childEntryName(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function deviceNumbers(rdev: number): { devmajor: number; devminor: number } {
  // glibc's gnu_dev_major/minor
  const devmajor = ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const devminor = (rdev & 0xff) | ((rdev >>> 12) & ~0xff & 0xfffff);
  return { devmajor, devminor };
}

/** A tar header as tar-stream reads and writes it. */
type EntryHeader = Partial<tar.Header> & Pick<tar.Header, 'name'>;
/** An entry of tar-stream's extractor: its header and its body. */
type TarEntry = Readable & { header: tar.Header };

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const READ_CHUNK = 1 << 16;

/** Writes what a location names into a tar stream, recursively, never leaving the container. */
class TarWriter {
  /** dev:ino of files with several links -> the entry name they were first written as. */
  private readonly links = new Map<string, string>();

  constructor(
    private readonly fsx: ContainerFs,
    private readonly pack: tar.Pack,
    private readonly signal: AbortSignal,
  ) {}

  async write(loc: Location, name: string): Promise<void> {
    if (loc.kind === 'file-mount') return this.hostFile(name, loc.mount.source);
    if (loc.kind === 'dir') return this.dir(loc.dir, name, loc.stat);
    if (!loc.stat) return;
    if (!loc.stat.isDirectory()) return this.nonDir(loc.parent, loc.name, name, loc.stat);
    const d = await this.fsx.openChild(loc.parent, loc.name);
    try {
      await this.dir(d, name, await d.handle.stat());
    } finally {
      await this.fsx.release(d);
    }
  }

  /** Resolves when `event` fires, or at once (with an error) when the transfer is abandoned. */
  private until(register: (done: (err?: Error | null) => void) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = (): void => finish(new Error('client went away'));
      const finish = (err?: Error | null): void => {
        this.signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      if (this.signal.aborted) return onAbort();
      this.signal.addEventListener('abort', onAbort, { once: true });
      register(finish);
    });
  }

  private entry(header: EntryHeader): Promise<void> {
    return this.until((done) => {
      // errors arrive through the callback too; a destroyed pack errors every entry
      this.pack.entry(header, done).on('error', () => {});
    });
  }

  private header(name: string, st: fs.Stats, extra: Partial<EntryHeader> & Pick<EntryHeader, 'type'>): EntryHeader {
    return { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime, size: 0, ...extra };
  }

  private async dir(dir: Dir, name: string, st: fs.Stats): Promise<void> {
    await this.entry(this.header(name, st, { type: 'directory' }));
    const names = (await fsp.readdir(dir.self)).sort(byteOrder);
    for (const child of names) {
      if (this.signal.aborted) throw new Error('client went away');
      const entryName = childEntryName(name, child);
      const mount = this.fsx.mountAt(dir.childPath(child));
      if (mount?.kind === 'file') {
        await this.hostFile(entryName, mount.source);
        continue;
      }
      const cst = mount ? undefined : await this.fsx.lstatChild(dir, child);
      if (!mount && !cst) continue; // gone meanwhile
      if (mount || cst!.isDirectory()) {
        let sub: Dir;
        try {
          sub = await this.fsx.openChild(dir, child);
        } catch (err) {
          if (err instanceof FsPathError) continue; // replaced meanwhile
          throw err;
        }
        try {
          await this.dir(sub, entryName, await sub.handle.stat());
        } finally {
          await this.fsx.release(sub);
        }
        continue;
      }
      await this.nonDir(dir, child, entryName, cst!);
    }
  }

  private async nonDir(dir: Dir, child: string, name: string, st: fs.Stats): Promise<void> {
    if (st.isSymbolicLink()) {
      const linkname = await fsp.readlink(dir.child(child));
      return this.entry(this.header(name, st, { type: 'symlink', linkname }));
    }
    if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
      const type = st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'character-device' : 'block-device';
      return this.entry(this.header(name, st, { type, ...deviceNumbers(st.rdev) }));
    }
    if (!st.isFile()) return; // sockets are not archived (as in Docker)
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) return this.entry(this.header(name, st, { type: 'link', linkname: first }));
      this.links.set(key, name);
    }
    let fh: FileHandle;
    try {
      // O_NOFOLLOW: a file swapped for a symlink is not followed; O_NONBLOCK: nor is a fifo waited on
      fh = await fsp.open(dir.child(child), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ELOOP') return;
      throw err;
    }
    try {
      const fst = await fh.stat();
      if (!fst.isFile()) return;
      await this.fileBody(this.header(name, fst, { type: 'file', size: fst.size }), fh);
    } finally {
      await fh.close();
    }
  }

  /** A file mounted over the root (e.g. /etc/hosts): a host file berthd owns. */
  private async hostFile(name: string, source: string): Promise<void> {
    const fh = await fsp.open(source, O_RDONLY | O_NONBLOCK);
    try {
      const st = await fh.stat();
      if (!st.isFile()) return;
      await this.fileBody(this.header(name, st, { type: 'file', size: st.size }), fh);
    } finally {
      await fh.close();
    }
  }

  /** Exactly header.size bytes: a file that shrank meanwhile is padded, one that grew is cut. */
  private async fileBody(header: EntryHeader, fh: FileHandle): Promise<void> {
    await this.until((done) => {
      const sink = this.pack.entry(header, done);
      sink.on('error', () => {});
      const pump = async (): Promise<void> => {
        let remaining = header.size ?? 0;
        let position = 0;
        while (remaining > 0) {
          if (this.signal.aborted) throw new Error('client went away');
          const buf = Buffer.allocUnsafe(Math.min(remaining, READ_CHUNK));
          const { bytesRead } = await fh.read(buf, 0, buf.length, position);
          const chunk = bytesRead === 0 ? Buffer.alloc(buf.length) : buf.subarray(0, bytesRead);
          position += chunk.length;
          remaining -= chunk.length;
          if (!sink.write(chunk)) await this.until((drained) => sink.once('drain', () => drained()));
        }
        sink.end(null);
      };
      pump().catch((err: Error) => {
        sink.destroy(err);
        done(err);
      });
    });
  }
}

/** Cleans a tar entry name relative to the extraction point; one that climbs out is refused. */
function cleanEntryName(name: string): string {
  let depth = 0;
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    depth += part === '..' ? -1 : 1;
    if (depth < 0) throw invalidArgument(`invalid tar entry ${JSON.stringify(name)}: it points outside the extraction directory`);
  }
  return path.posix.normalize(`/${name}`).slice(1).replace(/\/+$/, '');
}

interface Owner {
  uid: number;
  gid: number;
}

/** Unpacks tar entries under an extraction point inside the container. */
class Extractor {
  private cached: { rel: string; dir: Dir } | undefined;
  private readonly dirTimes: { rel: string; mtime: Date }[] = [];

  constructor(
    private readonly fsx: ContainerFs,
    /** The extraction point, resolved (symlinks followed). */
    private readonly base: string,
    private readonly options: ExtractOptions,
    private readonly owner: Owner | undefined,
  ) {}

  private containerPath(rel: string): string {
    return rel === '' ? this.base : childEntryName(this.base, rel);
  }

  /** The directory an entry goes into, created (root-owned, 0755) when missing. */
  private async parentDir(rel: string): Promise<Dir> {
    if (this.cached?.rel === rel) return this.cached.dir;
    await this.dropCache();
    const loc = await this.fsx.resolve(this.containerPath(rel), { followFinal: true, createDirs: true });
    const dir = await this.fsx.openLocation(loc);
    if (loc.kind === 'entry') await this.fsx.release(loc.parent);
    this.cached = { rel, dir };
    return dir;
  }

  private async dropCache(under?: string): Promise<void> {
    if (!this.cached) return;
    if (under !== undefined && this.cached.rel !== under && !this.cached.rel.startsWith(`${under}/`)) return;
    await this.fsx.release(this.cached.dir);
    this.cached = undefined;
  }

  async entry(header: EntryHeader, body: Readable): Promise<void> {
    let drained = false;
    try {
      const rel = cleanEntryName(header.name);
      // the extraction point itself ("./"): Docker leaves it as it is
      if (rel === '') return;
      const parentRel = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
      const name = path.posix.basename(rel);
      const parent = await this.parentDir(parentRel);
      if (!this.fsx.writable(parent)) {
        throw forbidden(parent.mount ? 'mounted volume is marked read-only' : 'container rootfs is marked read-only');
      }
      const target = parent.childPath(name);
      const isDir = header.type === 'directory';
      const mount = this.fsx.mountAt(target);
      const existing = mount ? await fsp.stat(mount.source) : await this.fsx.lstatChild(parent, name);
      if (existing) {
        if (this.options.noOverwriteDirNonDir && existing.isDirectory() && !isDir) {
          throw invalidArgument(`cannot overwrite directory ${JSON.stringify(target)} with non-directory ${JSON.stringify(this.base)}`);
        }
        if (this.options.noOverwriteDirNonDir && !existing.isDirectory() && isDir) {
          throw invalidArgument(`cannot overwrite non-directory ${JSON.stringify(target)} with directory ${JSON.stringify(this.base)}`);
        }
        if (mount?.readOnly) throw forbidden('mounted volume is marked read-only');
        if (!(existing.isDirectory() && isDir)) {
          if (mount) throw invalidArgument(`cannot replace ${target}: it is a mount point`);
          await this.dropCache(rel);
          await this.fsx.removeChild(parent, name);
        }
      }
      const uid = this.owner?.uid ?? header.uid ?? 0;
      const gid = this.owner?.gid ?? header.gid ?? 0;
      const mode = (header.mode ?? 0o644) & 0o7777;
      const mtime = header.mtime ?? new Date();
      const p = parent.child(name);
      switch (header.type) {
        case 'directory': {
          if (!existing) await fsp.mkdir(p, { mode: 0o700 });
          const d = await this.fsx.openChild(parent, name);
          try {
            await d.handle.chown(uid, gid);
            await d.handle.chmod(mode);
          } finally {
            await this.fsx.release(d);
          }
          this.dirTimes.push({ rel, mtime });
          break;
        }
        case 'file':
        case 'contiguous-file':
        case null:
        case undefined: {
          const fh = await fsp.open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
          try {
            for await (const chunk of body) await fh.write(chunk as Buffer);
            drained = true;
            await fh.chown(uid, gid);
            await fh.chmod(mode);
            await fh.utimes(mtime, mtime);
          } finally {
            await fh.close();
          }
          break;
        }
        case 'symlink':
          await fsp.symlink(header.linkname ?? '', p);
          await fsp.lchown(p, uid, gid);
          await fsp.lutimes(p, mtime, mtime);
          break;
        case 'link': {
          const linkRel = cleanEntryName(header.linkname ?? '');
          if (linkRel === '') throw invalidArgument(`invalid tar entry ${JSON.stringify(header.name)}: hard link to the extraction directory`);
          const src = await this.fsx.resolve(this.containerPath(linkRel), { followFinal: false });
          try {
            if (src.kind !== 'entry' || !src.stat) throw invalidArgument(`invalid tar entry ${JSON.stringify(header.name)}: hard link target ${JSON.stringify(header.linkname)} does not exist`);
            if (src.stat.isDirectory()) throw invalidArgument(`invalid tar entry ${JSON.stringify(header.name)}: hard link to a directory`);
            await fsp.link(src.parent.child(src.name), p);
          } finally {
            if (src.kind === 'entry') await this.fsx.release(src.parent);
          }
          break;
        }
        case 'character-device':
        case 'block-device':
        case 'fifo': {
          const kind = header.type === 'fifo' ? S_IFIFO : header.type === 'block-device' ? S_IFBLK : S_IFCHR;
          native().mknod(p, kind | mode, header.devmajor ?? 0, header.devminor ?? 0);
          await fsp.lchown(p, uid, gid);
          await fsp.chmod(p, mode);
          await fsp.lutimes(p, mtime, mtime);
          break;
        }
        default:
          return; // pax/GNU meta entries are consumed by the parser; others are skipped, as Docker does
      }
      this.applyXattrs(p, header);
    } finally {
      if (!drained) body.resume();
    }
  }

  private applyXattrs(p: string, header: EntryHeader): void {
    const pax = header.pax as Record<string, unknown> | null | undefined;
    if (!pax) return;
    for (const [key, value] of Object.entries(pax)) {
      if (!key.startsWith('SCHILY.xattr.') || typeof value !== 'string' || value.includes('\uFFFD')) continue;
      try {
        native().lsetxattr(p, key.slice('SCHILY.xattr.'.length), Buffer.from(value, 'utf8'));
      } catch (err) {
        const code = errnoCode(err);
        if (code !== 'ENOTSUP' && code !== 'EPERM') throw err;
      }
    }
  }

  /** Directory times last, deepest first: writing their children changed them. */
  async finish(): Promise<void> {
    await this.dropCache();
    this.dirTimes.sort((a, b) => b.rel.split('/').length - a.rel.split('/').length);
    for (const d of this.dirTimes) {
      const loc = await this.fsx.resolve(this.containerPath(d.rel), { followFinal: false }).catch(() => undefined);
      if (!loc) continue;
      if (loc.kind === 'entry' && loc.stat?.isDirectory()) {
        await fsp.lutimes(loc.parent.child(loc.name), d.mtime, d.mtime).catch(() => {});
        await this.fsx.release(loc.parent);
      } else if (loc.kind === 'dir') {
        await loc.dir.handle.utimes(d.mtime, d.mtime).catch(() => {});
      }
    }
  }
}

/**
 * Copies the tar to the response with backpressure; rejects if the
 * response closes first (the client went away).
 */
function send(pack: tar.Pack, out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    let finished = false;
    const fail = (err: Error): void => {
      if (finished) return;
      finished = true;
      pack.destroy(err);
      reject(err);
    };
    pack.on('data', (chunk: unknown) => {
      if (!out.write(chunk as Buffer)) pack.pause();
    });
    out.on('drain', () => pack.resume());
    pack.on('end', () => {
      finished = true;
      out.end(() => resolve());
    });
    pack.on('error', (err: Error) => fail(err));
    out.on('error', (err: Error) => fail(err));
    out.on('close', () => fail(new Error('the client went away')));
  });
}

/** Feeds a Node stream into tar-stream's extractor with backpressure. */
function feed(source: Readable, extract: tar.Extract): void {
  source.on('data', (chunk: Buffer) => {
    if (!extract.write(chunk)) source.pause();
  });
  extract.on('drain', () => source.resume());
  source.on('end', () => extract.end(null));
  source.on('error', (err: Error) => extract.destroy(err));
}

export class ContainerArchive {
  constructor(
    private readonly containers: ArchiveContainers,
    private readonly events: EventBus,
  ) {}

  /** HEAD: what the path is (the last component not followed). */
  async statPath(input: string, p: string): Promise<PathStat> {
    return this.containers.withFilesystem(input, async (view) => {
      const fsx = new ContainerFs(view);
      try {
        const abs = containerAbsPath(p);
        const loc = await this.locate(fsx, abs, input, p);
        return await this.pathStat(fsx, abs, loc);
      } finally {
        await fsx.close();
      }
    });
  }

  /**
   * GET: the tar of a path. `begin` is called with the stat once the path is
   * known to exist (so errors before it are plain HTTP errors) and returns
   * where the tar goes.
   */
  async archive(input: string, p: string, begin: (stat: PathStat) => Writable, signal: AbortSignal): Promise<void> {
    await this.containers.withFilesystem(input, async (view, c) => {
      const fsx = new ContainerFs(view);
      try {
        const abs = containerAbsPath(p);
        const loc = await this.locate(fsx, abs, input, p);
        const stat = await this.pathStat(fsx, abs, loc);
        const out = begin(stat);
        const pack = tarStream().pack();
        // a failed send (the client went away) stops the walk, wherever it waits
        const abandon = new AbortController();
        const onAbort = (): void => abandon.abort();
        signal.addEventListener('abort', onAbort, { once: true });
        let sendError: unknown;
        const sending = send(pack, out).catch((err: unknown) => {
          sendError = err;
          abandon.abort();
        });
        try {
          await new TarWriter(fsx, pack, abandon.signal).write(loc, goBase(abs));
          pack.finalize();
        } catch (err) {
          pack.destroy(err as Error);
          await sending;
          // the client went away: nobody to tell
          if (abandon.signal.aborted) return;
          throw err;
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
        await sending;
        if (sendError) return;
        this.events.publish('container', 'archive-path', c.id, this.containers.eventAttributes(c, { path: p }));
      } finally {
        await fsx.close();
      }
    });
  }

  /** PUT: unpacks a (possibly compressed) tar into a directory of the container. */
  async extract(input: string, p: string, body: Readable, options: ExtractOptions): Promise<void> {
    await this.containers.withFilesystem(input, async (view, c) => {
      const fsx = new ContainerFs(view);
      try {
        const abs = containerAbsPath(p);
        let loc: Location;
        try {
          loc = await fsx.resolve(abs, { followFinal: true });
        } catch (err) {
          throw this.mapError(err, input, p);
        }
        if (!loc.stat) throw notFound(`Could not find the file ${p} in container ${input}`);
        if (!loc.stat.isDirectory()) throw invalidArgument('extraction point is not a directory');
        const mount = ContainerFs.mountOf(loc);
        if (mount?.readOnly) throw forbidden('mounted volume is marked read-only');
        if (!mount && view.readonlyRootfs) throw forbidden('container rootfs is marked read-only');
        let owner: Owner | undefined;
        if (options.copyUIDGID && c.config.User) {
          const u = await resolveUser(`/proc/self/fd/${view.root.fd}`, c.config.User, []);
          owner = { uid: u.uid, gid: u.gid };
        }
        await this.unpack(fsx, loc.path, body, options, owner);
        this.events.publish('container', 'extract-to-dir', c.id, this.containers.eventAttributes(c, { path: p }));
      } finally {
        await fsx.close();
      }
    });
  }

  private async unpack(fsx: ContainerFs, base: string, body: Readable, options: ExtractOptions, owner: Owner | undefined): Promise<void> {
    const { stream } = await decompressed(body);
    const extract = tarStream().extract();
    const writer = new Extractor(fsx, base, options, owner);
    feed(stream, extract);
    const entries = (extract as unknown as AsyncIterable<TarEntry>)[Symbol.asyncIterator]();
    try {
      for (;;) {
        let next: IteratorResult<TarEntry>;
        try {
          next = await entries.next();
        } catch (err) {
          // the stream itself is not a tar (or was cut short)
          throw invalidArgument(`invalid tar archive: ${(err as Error).message}`);
        }
        if (next.done) break;
        await writer.entry(next.value.header, next.value);
      }
      await writer.finish();
    } catch (err) {
      stream.destroy();
      extract.destroy();
      throw this.mapError(err, '', base);
    }
  }

  private async locate(fsx: ContainerFs, abs: string, input: string, p: string): Promise<Location> {
    let loc: Location;
    try {
      loc = await fsx.resolve(abs, { followFinal: false });
    } catch (err) {
      throw this.mapError(err, input, p);
    }
    if (!loc.stat) throw notFound(`Could not find the file ${p} in container ${input}`);
    return loc;
  }

  private async pathStat(fsx: ContainerFs, abs: string, loc: Location): Promise<PathStat> {
    const st = loc.stat!;
    let linkTarget = '';
    if (st.isSymbolicLink()) {
      // fully evaluated inside the container, like Docker's FollowSymlinkInScope
      const target = await fsx.resolve(abs, { followFinal: true, lexicalMissing: true }).catch(() => undefined);
      linkTarget = target?.path ?? '';
    }
    const ms = st.mtimeMs;
    return {
      name: goBase(abs),
      size: st.size,
      mode: goFileMode(st),
      mtime: rfc3339Nano(Math.floor(ms), Math.round((ms % 1) * 1e6)),
      linkTarget,
    };
  }

  /** Filesystem errors as the API reports them; ours pass through. */
  private mapError(err: unknown, input: string, p: string): unknown {
    if (err instanceof BerthError) return err;
    if (err instanceof FsPathError) {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') {
        return input ? notFound(`Could not find the file ${p} in container ${input}`) : invalidArgument(`${err.containerPath}: not a directory`);
      }
      if (err.code === 'EROFS') return forbidden(`${err.containerPath}: read-only file system`);
      return invalidArgument(err.message);
    }
    const code = errnoCode(err);
    // a mount's source missing on the host
    if ((code === 'ENOENT' || code === 'ENOTDIR') && input) return notFound(`Could not find the file ${p} in container ${input}`);
    if (code === 'EROFS') return forbidden(`read-only file system: ${(err as Error).message}`);
    if (code === 'EXDEV') return invalidArgument(`hard links cannot cross mounts: ${(err as Error).message}`);
    if (code === 'ENOSPC' || code === 'EDQUOT') return internal(`no space left on device: ${(err as Error).message}`);
    return err;
  }
}
