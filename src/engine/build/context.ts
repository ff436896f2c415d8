/**
 * The build context as the client sent it (a tar, plain or compressed),
 * kept as one spool file plus an index of its entries: file data is never
 * unpacked into a directory tree. A cached rebuild only reads and hashes
 * the upload once; COPY reads file data straight from the spool.
 *
 * Entry names are cleaned; one that climbs out of the context is refused.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { invalidArgument } from '../../core/errdefs/index.js';
import { cleanEntryPath } from '../archive/apply-layer.js';
import { decompressed } from '../archive/compression.js';
import { type TarHeader, TarFormatError, TarReader, type TarSink } from '../archive/tar-reader.js';
import { dockerignoreMatcher } from '../../util/dockerignore.js';
import type { SourceNode, SourceTree } from './source-tree.js';

interface IndexEntry extends SourceNode {
  /** Where the file's data starts in the spool. */
  offset: number;
  /** sha256 (hex) of the file's data; for symlinks of the target. */
  digest: string;
}

export class BuildContext implements SourceTree {
  private readonly entries = new Map<string, IndexEntry>();
  private readonly childNames = new Map<string, Set<string>>();

  private constructor(private readonly spool: string) {
    this.entries.set('', { type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: new Date(), offset: 0, digest: '' });
    this.childNames.set('', new Set());
  }

  /**
   * Reads the whole upload into dir/context.spool and indexes it. The tar is
   * parsed synchronously as bytes arrive; file data is hashed and gathered
   * into large writes. The spool is scratch: no fsync.
   */
  static async receive(body: Readable, dir: string, signal?: AbortSignal): Promise<BuildContext> {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const spool = path.join(dir, 'context.spool');
    const ctx = new BuildContext(spool);
    const out = await fsp.open(spool, 'w', 0o600);
    const sink = new SpoolSink(ctx);
    const reader = new TarReader(sink);
    try {
      const { stream } = await decompressed(body, true);
      // 'data' events rather than an async iterator: the docker CLI sends
      // the context in ~16 KiB HTTP chunks, thousands per build, and a
      // promise plus a copy stage per chunk cost more than the parsing.
      await new Promise<void>((resolve, reject) => {
        let failed = false;
        const fail = (err: unknown): void => {
          if (failed) return;
          failed = true;
          cleanup();
          // The rest of the upload is read and dropped, so that the client
          // gets to read the error; a client that went away is cut off.
          if (signal?.aborted) stream.destroy();
          else stream.resume();
          reject(err);
        };
        const onData = (chunk: Buffer): void => {
          try {
            reader.write(chunk);
          } catch (err) {
            fail(err);
            return;
          }
          if (sink.buffered < SPOOL_WRITE) return;
          const wait = sink.flush(out);
          if (!wait) return;
          stream.pause();
          wait.then(() => {
            if (!failed) stream.resume();
          }, fail);
        };
        const onEnd = (): void => {
          cleanup();
          resolve();
        };
        const onGone = (): void => fail(new Error('the client went away'));
        const cleanup = (): void => {
          stream.off('data', onData);
          stream.off('end', onEnd);
          stream.off('error', fail);
          stream.off('close', onGone);
          signal?.removeEventListener('abort', onGone);
        };
        stream.on('data', onData);
        stream.once('end', onEnd);
        stream.once('error', fail);
        stream.once('close', onGone);
        signal?.addEventListener('abort', onGone, { once: true });
        if (signal?.aborted) onGone();
        else stream.resume(); // peek() left it paused
      });
      sink.flush(out);
      await sink.drain();
      try {
        reader.end();
      } catch (err) {
        // The docker CLI's context for a Dockerfile outside the directory
        // ends right after the last entry's data (no padding, no end
        // blocks): the end of data after a complete entry ends the archive.
        if (!(err instanceof TarFormatError && sink.complete && /Unexpected end of data/.test(err.message))) throw err;
      }
      sink.flush(out);
      await sink.drain();
    } catch (err) {
      await out.close().catch(() => {});
      await fsp.rm(spool, { force: true });
      if (err instanceof TarFormatError) throw invalidArgument(`the build context is not a valid tar archive: ${err.message}`);
      throw err;
    }
    await out.close();
    return ctx;
  }

  /** Records one entry the tar reader found (file data is already in the spool). */
  record(h: TarHeader, data?: { offset: number; size: number; digest: string }): void {
    let rel: string;
    try {
      rel = cleanEntryPath(h.name);
    } catch {
      throw invalidArgument(`the build context holds a path outside of it: ${h.name}`);
    }
    if (!rel) return;
    const base = { mode: h.mode & 0o7777, uid: h.uid, gid: h.gid, mtime: new Date(h.mtime * 1000) };
    switch (h.type) {
      case 'file':
        this.add(rel, { ...base, type: 'file', size: data!.size, offset: data!.offset, digest: data!.digest });
        return;
      case 'directory':
        this.add(rel, { ...base, type: 'directory', size: 0, offset: 0, digest: '' });
        return;
      case 'symlink':
        this.add(rel, { ...base, type: 'symlink', size: 0, linkname: h.linkname, offset: 0, digest: sha256Hex(h.linkname) });
        return;
      case 'link': {
        let target: string;
        try {
          target = cleanEntryPath(h.linkname);
        } catch {
          throw invalidArgument(`the build context holds a link to a path outside of it: ${h.linkname}`);
        }
        const existing = this.entries.get(target);
        if (!existing || existing.type !== 'file') throw invalidArgument(`the build context holds a hard link to a missing file: ${h.name} -> ${h.linkname}`);
        this.add(rel, { ...existing, ...base });
        return;
      }
      default:
      // devices, fifos and sockets are not part of a build context
    }
  }

  private add(rel: string, entry: IndexEntry): void {
    const existing = this.entries.get(rel);
    if (existing?.type === 'directory' && entry.type !== 'directory') this.removeTree(rel);
    this.ensureParents(rel);
    this.entries.set(rel, entry);
    if (entry.type === 'directory' && !this.childNames.has(rel)) this.childNames.set(rel, new Set());
    this.childNames.get(parentOf(rel))!.add(path.posix.basename(rel));
  }

  private ensureParents(rel: string): void {
    const parent = parentOf(rel);
    if (parent === '' || this.entries.get(parent)?.type === 'directory') return;
    if (this.entries.has(parent)) this.remove(parent); // a file replaced by a directory
    this.ensureParents(parent);
    this.entries.set(parent, { type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: new Date(0), offset: 0, digest: '' });
    this.childNames.set(parent, new Set());
    this.childNames.get(parentOf(parent))!.add(path.posix.basename(parent));
  }

  /** Drops an entry (and everything below a directory). */
  remove(rel: string): void {
    this.removeTree(rel);
    this.childNames.get(parentOf(rel))?.delete(path.posix.basename(rel));
  }

  private removeTree(rel: string): void {
    for (const child of this.childNames.get(rel) ?? []) this.removeTree(rel ? `${rel}/${child}` : child);
    this.childNames.delete(rel);
    this.entries.delete(rel);
  }

  /**
   * Docker's daemon-side .dockerignore rule: the client already left ignored
   * files out; the Dockerfile and .dockerignore themselves are dropped when
   * ignored, so `COPY . .` does not pick them up.
   */
  async applyDockerignore(dockerfile: string): Promise<void> {
    const text = await this.readText('.dockerignore');
    if (text === undefined) return;
    const ig = dockerignoreMatcher(text);
    for (const name of ['.dockerignore', dockerfile]) {
      if (this.entries.has(name) && ig.ignores(name)) this.remove(name);
    }
  }

  /** A small file's text, or undefined when the context has no such file. */
  async readText(rel: string, limit = 4 << 20): Promise<string | undefined> {
    const e = this.entries.get(rel);
    if (!e || e.type !== 'file') return undefined;
    if (e.size > limit) throw invalidArgument(`${rel} is larger than ${limit} bytes`);
    const fh = await fsp.open(this.spool, 'r');
    try {
      const buf = Buffer.alloc(e.size);
      await fh.read(buf, 0, e.size, e.offset);
      return buf.toString('utf8');
    } finally {
      await fh.close();
    }
  }

  // ---- SourceTree ----------------------------------------------------------

  async lstat(rel: string): Promise<SourceNode | undefined> {
    return this.entries.get(rel);
  }

  async list(rel: string): Promise<string[]> {
    return [...(this.childNames.get(rel) ?? [])].sort();
  }

  open(rel: string): Readable {
    const e = this.entries.get(rel);
    if (!e || e.type !== 'file') throw invalidArgument(`${rel} is not a file of the build context`);
    if (e.size === 0) return fs.createReadStream('/dev/null');
    return fs.createReadStream(this.spool, { start: e.offset, end: e.offset + e.size - 1, highWaterMark: 1 << 20 });
  }

  async readInto(rel: string, fh: fsp.FileHandle, buffer: Buffer): Promise<void> {
    const e = this.entries.get(rel);
    if (!e || e.type !== 'file') throw invalidArgument(`${rel} is not a file of the build context`);
    const src = await this.spoolHandle();
    let done = 0;
    while (done < e.size) {
      const n = Math.min(buffer.length, e.size - done);
      const { bytesRead } = await src.read(buffer, 0, n, e.offset + done);
      if (bytesRead === 0) throw new Error(`the build context spool is truncated at ${rel}`);
      await fh.write(buffer, 0, bytesRead);
      done += bytesRead;
    }
  }

  async digest(rel: string): Promise<string> {
    const e = this.entries.get(rel);
    if (!e) throw invalidArgument(`${rel} is not in the build context`);
    return e.digest;
  }

  private spoolFh: Promise<fsp.FileHandle> | undefined;
  private spoolHandle(): Promise<fsp.FileHandle> {
    this.spoolFh ??= fsp.open(this.spool, 'r');
    return this.spoolFh;
  }

  async close(): Promise<void> {
    if (this.spoolFh) await (await this.spoolFh).close().catch(() => {});
    this.spoolFh = undefined;
    await fsp.rm(this.spool, { force: true });
  }
}

const SPOOL_WRITE = 4 << 20;

/** TarReader's sink: file data is hashed and queued for the spool, entries go to the index. */
class SpoolSink implements TarSink {
  private chunks: Buffer[] = [];
  buffered = 0;
  private position = 0;
  private header: TarHeader | undefined;
  private hash: crypto.Hash | undefined;
  private offset = 0;
  /** The last entry was read to its end. */
  complete = true;

  constructor(private readonly ctx: BuildContext) {}

  entry(header: TarHeader): void {
    this.complete = false;
    this.header = header;
    this.offset = this.position + this.buffered;
    this.hash = header.type === 'file' ? crypto.createHash('sha256') : undefined;
  }

  data(bytes: Buffer): void {
    if (!this.hash) return;
    this.hash.update(bytes);
    this.chunks.push(bytes); // stream chunks are not reused: no copy needed
    this.buffered += bytes.length;
  }

  entryEnd(): void {
    const h = this.header!;
    const size = this.position + this.buffered - this.offset;
    this.ctx.record(h, this.hash ? { offset: this.offset, size, digest: this.hash.digest('hex') } : undefined);
    this.hash = undefined;
    this.complete = true;
  }

  private writes: Promise<unknown>[] = [];

  /**
   * Starts writing what is gathered (one writev, no copy). Parsing and
   * hashing go on while the kernel copies; when two writes are already
   * under way, returns the oldest one for the caller to wait for.
   */
  flush(out: fsp.FileHandle): Promise<unknown> | undefined {
    if (!this.buffered) return undefined;
    const chunks = this.chunks;
    const position = this.position;
    this.position += this.buffered;
    this.chunks = [];
    this.buffered = 0;
    const write = writeAll(out, chunks, position);
    write.catch(() => {}); // awaited by drain() or the next flush; never unhandled meanwhile
    this.writes.push(write);
    return this.writes.length > 2 ? this.writes.shift() : undefined;
  }

  async drain(): Promise<void> {
    await Promise.all(this.writes.splice(0));
  }
}

/** writev until every byte is written (a short write continues where it stopped). */
async function writeAll(out: fsp.FileHandle, chunks: Buffer[], position: number): Promise<void> {
  let pending = chunks;
  let at = position;
  while (pending.length) {
    const { bytesWritten } = await out.writev(pending, at);
    at += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const c of pending) {
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      rest.push(skip ? c.subarray(skip) : c);
      skip = 0;
    }
    pending = rest;
  }
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

function sha256Hex(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}
