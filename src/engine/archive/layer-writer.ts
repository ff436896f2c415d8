/**
 * Writes tar entries of one layer into an empty, private directory with
 * synchronous system calls (it runs inside the unpack worker), converting
 * Docker/OCI whiteouts to overlayfs form (.wh.NAME -> 0:0 char device,
 * .wh..wh..opq -> trusted.overlay.opaque=y).
 *
 * Containment: every entry path is cleaned; one that leaves the root is
 * refused, and no entry is ever written through a symlink (the directory is
 * fresh and we remember every symlink we create, so a prefix that is a
 * symlink is refused). Files are created with O_EXCL, so an existing
 * symlink at the final path is never followed either. On any error the
 * caller discards the whole directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import type { TarHeader, TarSink } from './tar-reader.js';
import { ParallelFiles } from './parallel-files.js';
import { native, S_IFBLK, S_IFCHR, S_IFIFO } from '../runtime/native.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

const RUNNING_AS_ROOT = process.getuid?.() === 0;
/** Regular files written by this writer itself before it hands files to helper threads. */
const PARALLEL_AFTER_FILES = 128;
/** File writer threads: one per core (the kernel's file creation is what they share out). */
const HELPERS = Math.min(4, os.availableParallelism());

/** A refused entry: the message is shown to the user as is. */
export class InvalidEntryError extends Error {}

/** Cleans a tar entry name to a path relative to the root; throws if it escapes. */
export function cleanEntryPath(name: string): string {
  const normalized = path.posix.normalize('/' + name).slice(1).replace(/\/+$/, '');
  // normalize('/' + x) resolves ".." against the root; detect names that needed to climb out.
  const raw = name.split('/').filter((p) => p !== '' && p !== '.');
  let depth = 0;
  for (const part of raw) {
    depth += part === '..' ? -1 : 1;
    if (depth < 0) throw new InvalidEntryError(`invalid tar entry: path escapes the layer: ${JSON.stringify(name)}`);
  }
  return normalized;
}

function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

interface DeferredDir {
  rel: string;
  mtime: number;
}

export class SyncLayerWriter implements TarSink {
  private readonly symlinks = new Set<string>();
  private readonly knownDirs = new Set<string>(['']);
  /** Every path this writer created: anything else does not exist (the root was empty). */
  private readonly created = new Set<string>();
  private readonly dirTimes: DeferredDir[] = [];
  private fd: number | null = null;
  private current: { path: string; header: TarHeader } | null = null;
  /** Bytes of regular file content written. */
  size = 0;
  /** Once a set-group-ID directory exists, new entries may inherit its group: always chown then. */
  private setgidDirs = false;
  /** Helper threads for regular files, once the layer proves big enough to be worth them. */
  private parallel: ParallelFiles | null = null;
  private filesWritten = 0;
  /** Files handed to helpers since the last barrier: touching one of them waits for the helpers. */
  private readonly pending = new Set<string>();
  private helperFile: TarHeader | null = null;

  /** umask: the process's, passed in (workers cannot read it reliably). */
  constructor(
    private readonly root: string,
    private readonly umask = 0o022,
  ) {}

  /** Creation mode gives exactly `mode`: no chmod needed (set-id and sticky bits always need one). */
  private creationModeExact(mode: number): boolean {
    return (mode & 0o7000) === 0 && (mode & this.umask) === 0;
  }

  /** Created by root as 0:0 already, unless a set-group-ID parent gave it another group. */
  private ownerExact(uid: number, gid: number): boolean {
    return uid === 0 && gid === 0 && !this.setgidDirs && RUNNING_AS_ROOT;
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  /** Refuses paths whose parent chain passes through a symlink we created. */
  private checkPrefixes(rel: string): void {
    if (this.symlinks.size === 0) return;
    let i = rel.indexOf('/');
    while (i >= 0) {
      const prefix = rel.slice(0, i);
      if (this.symlinks.has(prefix)) {
        throw new InvalidEntryError(`invalid tar entry: ${JSON.stringify(rel)} passes through symlink ${JSON.stringify(prefix)}`);
      }
      i = rel.indexOf('/', i + 1);
    }
  }

  private ensureParents(rel: string): void {
    let i = rel.indexOf('/');
    while (i >= 0) {
      const prefix = rel.slice(0, i);
      if (!this.knownDirs.has(prefix)) {
        const p = this.abs(prefix);
        if (this.created.has(prefix)) {
          this.settle(prefix, false);
          if (!fs.lstatSync(p).isDirectory()) throw new InvalidEntryError(`invalid tar entry: parent ${JSON.stringify(prefix)} is not a directory`);
        } else {
          fs.mkdirSync(p, { mode: 0o755 });
          this.created.add(prefix);
        }
        this.knownDirs.add(prefix);
      }
      i = rel.indexOf('/', i + 1);
    }
  }

  /** Removes whatever is at rel (unless keepDir and it is a directory); true when a kept directory exists. */
  private clear(rel: string, keepDir: boolean): boolean {
    if (!this.created.has(rel)) return false;
    this.settle(rel, false);
    const p = this.abs(rel);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch (err) {
      if (errno(err) === 'ENOENT') return false;
      throw err;
    }
    if (st.isDirectory()) {
      if (keepDir) return true;
      this.settle(rel, true);
      fs.rmSync(p, { recursive: true, force: true });
      const under = rel + '/';
      for (const s of this.symlinks) if (s.startsWith(under)) this.symlinks.delete(s);
      for (const d of this.knownDirs) if (d === rel || d.startsWith(under)) this.knownDirs.delete(d);
      for (const c of this.created) if (c === rel || c.startsWith(under)) this.created.delete(c);
    } else {
      fs.unlinkSync(p);
      this.symlinks.delete(rel);
      this.created.delete(rel);
    }
    return false;
  }

  entry(header: TarHeader): void {
    const rel = cleanEntryPath(header.name);
    const base = path.posix.basename(rel);

    if (base.startsWith(WHITEOUT_PREFIX)) {
      this.checkPrefixes(rel);
      this.ensureParents(rel);
      const dir = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
      if (base === OPAQUE_WHITEOUT) {
        native().lsetxattr(this.abs(dir), OVERLAY_OPAQUE_XATTR, Buffer.from('y'));
      } else if (!base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) {
        const target = dir ? `${dir}/${base.slice(WHITEOUT_PREFIX.length)}` : base.slice(WHITEOUT_PREFIX.length);
        this.clear(target, false);
        native().mknod(this.abs(target), S_IFCHR | 0o000, 0, 0);
        this.created.add(target);
      }
      // other .wh..wh.* names are aufs bookkeeping: nothing to apply
      return;
    }

    const mode = header.mode & 0o7777;
    const { uid, gid, mtime } = header;

    if (rel === '') {
      if (header.type === 'directory') {
        fs.chownSync(this.root, uid, gid);
        fs.chmodSync(this.root, mode);
        this.dirTimes.push({ rel: '', mtime });
      }
      return;
    }

    this.checkPrefixes(rel);
    this.ensureParents(rel);
    const p = this.abs(rel);

    switch (header.type) {
      case 'directory': {
        const exists = this.clear(rel, true);
        const fresh = !exists;
        if (fresh) {
          fs.mkdirSync(p, { mode: mode & 0o777 });
          this.created.add(rel);
        }
        this.knownDirs.add(rel);
        if (!fresh || !this.ownerExact(uid, gid)) fs.lchownSync(p, uid, gid);
        if (!fresh || !this.creationModeExact(mode) || !this.ownerExact(uid, gid)) fs.chmodSync(p, mode);
        if (mode & 0o2000) this.setgidDirs = true;
        this.dirTimes.push({ rel, mtime });
        break;
      }
      case 'file': {
        this.clear(rel, false);
        this.created.add(rel);
        if (!this.parallel && ++this.filesWritten > PARALLEL_AFTER_FILES && HELPERS > 0) this.parallel = new ParallelFiles(HELPERS);
        if (this.parallel) {
          this.parallel.begin(p, header.mode);
          this.pending.add(rel);
          this.helperFile = header;
          return;
        }
        this.fd = fs.openSync(p, 'wx', header.mode & 0o777);
        this.current = { path: p, header };
        return; // attributes once the data is written (entryEnd)
      }
      case 'symlink': {
        this.clear(rel, false);
        fs.symlinkSync(header.linkname, p);
        this.created.add(rel);
        this.symlinks.add(rel);
        fs.lchownSync(p, uid, gid);
        fs.lutimesSync(p, mtime, mtime);
        break;
      }
      case 'link': {
        const target = cleanEntryPath(header.linkname);
        if (target === '') throw new InvalidEntryError(`invalid tar entry: hard link ${JSON.stringify(rel)} to the root`);
        this.checkPrefixes(target);
        if (this.symlinks.has(path.posix.dirname(target))) {
          throw new InvalidEntryError(`invalid tar entry: hard link target ${JSON.stringify(target)} passes through a symlink`);
        }
        let st: fs.Stats | undefined;
        this.settle(target, false);
        if (this.created.has(target)) {
          try {
            st = fs.lstatSync(this.abs(target));
          } catch (err) {
            if (errno(err) !== 'ENOENT') throw err;
          }
        }
        if (!st) throw new InvalidEntryError(`invalid tar entry: hard link target ${JSON.stringify(header.linkname)} is not in the layer`);
        if (st.isDirectory()) throw new InvalidEntryError(`invalid tar entry: hard link to directory ${JSON.stringify(target)}`);
        this.clear(rel, false);
        fs.linkSync(this.abs(target), p);
        this.created.add(rel);
        if (st.isSymbolicLink()) this.symlinks.add(rel);
        break;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        this.clear(rel, false);
        const kind = header.type === 'fifo' ? S_IFIFO : header.type === 'block-device' ? S_IFBLK : S_IFCHR;
        native().mknod(p, kind | mode, header.devmajor, header.devminor);
        this.created.add(rel);
        fs.lchownSync(p, uid, gid);
        fs.chmodSync(p, mode);
        fs.lutimesSync(p, mtime, mtime);
        break;
      }
      default:
        // anything else is ignored, as Docker does
        return;
    }
    this.applyXattrs(p, header);
  }

  /** Waits for the helpers when rel (or, for a directory, anything under it) may still be being written. */
  private settle(rel: string, subtree: boolean): void {
    if (!this.parallel || this.pending.size === 0) return;
    let hit = this.pending.has(rel);
    if (!hit && subtree) {
      const under = rel + '/';
      for (const p of this.pending) {
        if (p.startsWith(under)) {
          hit = true;
          break;
        }
      }
    }
    if (!hit) return;
    this.parallel.barrier();
    this.pending.clear();
  }

  data(bytes: Buffer): void {
    if (this.helperFile) {
      this.parallel!.data(bytes);
      this.size += bytes.length;
      return;
    }
    if (this.fd === null) return;
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(this.fd, bytes, off, bytes.length - off);
    this.size += bytes.length;
  }

  entryEnd(): void {
    if (this.helperFile) {
      const header = this.helperFile;
      this.helperFile = null;
      const ownerExact = this.ownerExact(header.uid, header.gid);
      this.parallel!.end(header, !ownerExact, !ownerExact || !this.creationModeExact(header.mode));
      return;
    }
    if (this.fd === null || !this.current) return;
    const fd = this.fd;
    const { path: p, header } = this.current;
    this.fd = null;
    this.current = null;
    try {
      // chown before chmod: chown clears set-id bits
      const ownerExact = this.ownerExact(header.uid, header.gid);
      if (!ownerExact) fs.fchownSync(fd, header.uid, header.gid);
      if (!ownerExact || !this.creationModeExact(header.mode)) fs.fchmodSync(fd, header.mode & 0o7777);
      fs.futimesSync(fd, header.mtime, header.mtime);
    } finally {
      fs.closeSync(fd);
    }
    this.applyXattrs(p, header);
  }

  private applyXattrs(p: string, header: TarHeader): void {
    for (const [name, value] of header.xattrs) {
      try {
        native().lsetxattr(p, name, value);
      } catch (err) {
        const code = errno(err);
        if (code !== 'ENOTSUP' && code !== 'EPERM') throw err;
      }
    }
  }

  /** Directory times last: writing children changed them. Deepest first. */
  finish(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
    if (this.parallel) {
      this.parallel.barrier();
      this.parallel.close(true);
      this.parallel = null;
      this.pending.clear();
    }
    this.dirTimes.sort((a, b) => b.rel.split('/').length - a.rel.split('/').length);
    for (const d of this.dirTimes) {
      try {
        fs.lutimesSync(this.abs(d.rel), d.mtime, d.mtime);
      } catch {
        // removed by a later entry
      }
    }
  }

  /** Closes an open file after an error. */
  abort(): void {
    this.parallel?.close();
    this.parallel = null;
    if (this.fd !== null) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed
      }
      this.fd = null;
    }
  }
}
