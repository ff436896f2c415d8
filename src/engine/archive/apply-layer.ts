/**
 * Unpacks a layer tar into an empty directory, converting Docker/OCI
 * whiteouts to overlayfs form (.wh.NAME -> 0:0 char device, .wh..wh..opq ->
 * trusted.overlay.opaque=y), and hashes the stream on the way to get the
 * layer's diffID.
 *
 * Containment: every entry path is cleaned; one that leaves the root is
 * refused, and no entry is ever written through a symlink (the directory is
 * fresh and we remember every symlink we create, so a prefix that is a
 * symlink is refused). Files are created with O_EXCL, so an existing
 * symlink at the final path is never followed either. On any error the
 * caller discards the whole directory.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Digest } from '../../core/images/digest.js';
import { errnoCode, invalidArgument } from '../../core/errdefs/index.js';
import { native, S_IFBLK, S_IFCHR, S_IFIFO } from '../runtime/native.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

export interface ApplyResult {
  diffID: Digest;
  /** Bytes of regular file content written. */
  size: number;
  /** Bytes of tar stream consumed. */
  tarSize: number;
}

export interface ApplyOptions {
  signal?: AbortSignal;
  /** Called with the number of tar bytes consumed so far (for progress). */
  onProgress?: (tarBytes: number) => void;
}

const SMALL_FILE = 1 << 20;

/** Cleans a tar entry name to a path relative to the root; throws if it escapes. */
export function cleanEntryPath(name: string): string {
  const normalized = path.posix.normalize('/' + name).slice(1).replace(/\/+$/, '');
  // normalize('/' + x) resolves ".." against the root; detect names that needed to climb out.
  const raw = name.split('/').filter((p) => p !== '' && p !== '.');
  let depth = 0;
  for (const part of raw) {
    depth += part === '..' ? -1 : 1;
    if (depth < 0) throw invalidArgument(`invalid tar entry: path escapes the layer: ${JSON.stringify(name)}`);
  }
  return normalized;
}

interface DeferredDir {
  rel: string;
  mtime: Date;
}

class LayerWriter {
  private readonly symlinks = new Set<string>();
  private readonly knownDirs = new Set<string>(['']);
  private readonly dirTimes: DeferredDir[] = [];
  size = 0;

  constructor(private readonly root: string) {}

  private abs(rel: string): string {
    return rel === '' ? this.root : path.join(this.root, rel);
  }

  /** Refuses paths whose parent chain passes through a symlink we created. */
  private checkPrefixes(rel: string): void {
    const parts = rel.split('/');
    let prefix = '';
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = prefix ? `${prefix}/${parts[i]}` : parts[i];
      if (this.symlinks.has(prefix)) {
        throw invalidArgument(`invalid tar entry: ${JSON.stringify(rel)} passes through symlink ${JSON.stringify(prefix)}`);
      }
    }
  }

  private async ensureParents(rel: string): Promise<void> {
    const parts = rel.split('/');
    let prefix = '';
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = prefix ? `${prefix}/${parts[i]}` : parts[i];
      if (this.knownDirs.has(prefix)) continue;
      const p = this.abs(prefix);
      try {
        await fsp.mkdir(p, { mode: 0o755 });
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
        const st = await fsp.lstat(p);
        if (!st.isDirectory()) throw invalidArgument(`invalid tar entry: parent ${JSON.stringify(prefix)} is not a directory`);
      }
      this.knownDirs.add(prefix);
    }
  }

  /** Removes whatever is at rel (unless keepDir and it is a directory). */
  private async clear(rel: string, keepDir: boolean): Promise<boolean> {
    const p = this.abs(rel);
    let st: fs.Stats;
    try {
      st = await fsp.lstat(p);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
    if (st.isDirectory()) {
      if (keepDir) return true;
      await fsp.rm(p, { recursive: true, force: true });
      for (const s of this.symlinks) if (s.startsWith(rel + '/')) this.symlinks.delete(s);
      for (const d of this.knownDirs) if (d === rel || d.startsWith(rel + '/')) this.knownDirs.delete(d);
    } else {
      await fsp.unlink(p);
      this.symlinks.delete(rel);
    }
    return false;
  }

  async entry(header: tar.Header, stream: Readable): Promise<void> {
    let drained = false;
    try {
      const rel = cleanEntryPath(header.name);
      const base = path.posix.basename(rel);

      if (base.startsWith(WHITEOUT_PREFIX)) {
        this.checkPrefixes(rel);
        await this.ensureParents(rel);
        const dir = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
        if (base === OPAQUE_WHITEOUT) {
          native().lsetxattr(this.abs(dir), OVERLAY_OPAQUE_XATTR, Buffer.from('y'));
        } else if (!base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) {
          const target = dir ? `${dir}/${base.slice(WHITEOUT_PREFIX.length)}` : base.slice(WHITEOUT_PREFIX.length);
          await this.clear(target, false);
          native().mknod(this.abs(target), S_IFCHR | 0o000, 0, 0);
        }
        // other .wh..wh.* names are aufs bookkeeping: nothing to apply
        return;
      }

      const mode = (header.mode ?? 0o644) & 0o7777;
      const uid = header.uid ?? 0;
      const gid = header.gid ?? 0;
      const mtime = header.mtime ?? new Date(0);

      if (rel === '') {
        if (header.type === 'directory') {
          await fsp.chown(this.root, uid, gid);
          await fsp.chmod(this.root, mode);
          this.dirTimes.push({ rel: '', mtime });
        }
        return;
      }

      this.checkPrefixes(rel);
      await this.ensureParents(rel);
      const p = this.abs(rel);

      switch (header.type) {
        case 'directory': {
          const exists = await this.clear(rel, true);
          if (!exists) await fsp.mkdir(p, { mode });
          this.knownDirs.add(rel);
          await fsp.lchown(p, uid, gid);
          await fsp.chmod(p, mode);
          this.dirTimes.push({ rel, mtime });
          break;
        }
        case 'file':
        case 'contiguous-file':
        case null:
        case undefined: {
          await this.clear(rel, false);
          const size = header.size ?? 0;
          if (size <= SMALL_FILE) {
            const chunks: Buffer[] = [];
            for await (const chunk of stream) chunks.push(chunk as Buffer);
            drained = true;
            await fsp.writeFile(p, Buffer.concat(chunks), { flag: 'wx', mode: 0o600 });
          } else {
            await pipeline(stream, fs.createWriteStream(p, { flags: 'wx', mode: 0o600 }));
            drained = true;
          }
          this.size += size;
          await fsp.lchown(p, uid, gid);
          await fsp.chmod(p, mode);
          await fsp.lutimes(p, mtime, mtime);
          break;
        }
        case 'symlink': {
          await this.clear(rel, false);
          await fsp.symlink(header.linkname ?? '', p);
          this.symlinks.add(rel);
          await fsp.lchown(p, uid, gid);
          await fsp.lutimes(p, mtime, mtime);
          break;
        }
        case 'link': {
          const target = cleanEntryPath(header.linkname ?? '');
          if (target === '') throw invalidArgument(`invalid tar entry: hard link ${JSON.stringify(rel)} to the root`);
          this.checkPrefixes(target);
          if (this.symlinks.has(path.posix.dirname(target))) {
            throw invalidArgument(`invalid tar entry: hard link target ${JSON.stringify(target)} passes through a symlink`);
          }
          let st: fs.Stats;
          try {
            st = await fsp.lstat(this.abs(target));
          } catch (err) {
            if (errnoCode(err) === 'ENOENT') {
              throw invalidArgument(`invalid tar entry: hard link target ${JSON.stringify(header.linkname)} is not in the layer`);
            }
            throw err;
          }
          if (st.isDirectory()) throw invalidArgument(`invalid tar entry: hard link to directory ${JSON.stringify(target)}`);
          await this.clear(rel, false);
          await fsp.link(this.abs(target), p);
          if (st.isSymbolicLink()) this.symlinks.add(rel);
          break;
        }
        case 'character-device':
        case 'block-device':
        case 'fifo': {
          await this.clear(rel, false);
          const kind = header.type === 'fifo' ? S_IFIFO : header.type === 'block-device' ? S_IFBLK : S_IFCHR;
          native().mknod(p, kind | mode, header.devmajor ?? 0, header.devminor ?? 0);
          await fsp.lchown(p, uid, gid);
          await fsp.chmod(p, mode);
          await fsp.lutimes(p, mtime, mtime);
          break;
        }
        default:
          // pax and GNU meta headers are consumed by the parser; anything else is ignored as Docker does
          return;
      }
      this.applyXattrs(p, header);
    } finally {
      if (!drained) stream.resume();
    }
  }

  private applyXattrs(p: string, header: tar.Header): void {
    const pax = header.pax as Record<string, unknown> | null | undefined;
    if (!pax) return;
    for (const [key, value] of Object.entries(pax)) {
      if (!key.startsWith('SCHILY.xattr.') || typeof value !== 'string') continue;
      const name = key.slice('SCHILY.xattr.'.length);
      // The tar parser decodes PAX values as UTF-8; binary values (such as
      // security.capability) do not survive that, so skip rather than corrupt.
      if (value.includes('\uFFFD')) continue;
      try {
        native().lsetxattr(p, name, Buffer.from(value, 'utf8'));
      } catch (err) {
        const code = errnoCode(err);
        if (code !== 'ENOTSUP' && code !== 'EPERM') throw err;
      }
    }
  }

  /** Directory times last: writing children changed them. Deepest first. */
  async finish(): Promise<void> {
    this.dirTimes.sort((a, b) => b.rel.split('/').length - a.rel.split('/').length);
    for (const d of this.dirTimes) {
      await fsp.lutimes(this.abs(d.rel), d.mtime, d.mtime).catch(() => {});
    }
  }
}

/**
 * Consumes an uncompressed tar stream into root (which must be empty and
 * private to this call). Resolves with the diffID once the whole stream was
 * read, hashed and written.
 */
export async function applyLayer(source: Readable, root: string, options: ApplyOptions = {}): Promise<ApplyResult> {
  const hash = crypto.createHash('sha256');
  const extract = tar.extract();
  const writer = new LayerWriter(root);
  let tarSize = 0;
  let sourceError: Error | undefined;

  const onAbort = (): void => {
    source.destroy(new Error('aborted'));
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });

  source.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    tarSize += chunk.length;
    options.onProgress?.(tarSize);
    if (!extract.write(chunk)) source.pause();
  });
  extract.on('drain', () => source.resume());
  source.on('end', () => extract.end(null));
  source.on('error', (err: Error) => {
    sourceError = err;
    extract.destroy(err);
  });

  try {
    for await (const entry of extract) {
      await writer.entry(entry.header, entry as unknown as Readable);
    }
    if (sourceError) throw sourceError;
    if (tarSize === 0) throw invalidArgument('invalid tar: the archive is empty');
    await writer.finish();
  } catch (err) {
    source.destroy();
    if (err instanceof Error && /Invalid tar header|Unexpected end of data|not a tar/i.test(err.message)) {
      throw invalidArgument(`invalid tar archive: ${err.message}`);
    }
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  return { diffID: `sha256:${hash.digest('hex')}`, size: writer.size, tarSize };
}
