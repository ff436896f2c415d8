/**
 * Blob uploads in flight. Each upload is a directory under uploads/ with the
 * bytes received so far (`data`) and who it belongs to (`info.json`). Bytes
 * are hashed as they stream in; the running hash lives in memory and, when it
 * was lost (restart) or no longer matches the file, the file is hashed again
 * at completion. Completion fsyncs the data, verifies the digest, and only
 * then renames the file into the blob store: nothing unverified is visible.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoCode } from '../../core/errdefs/index.js';
import type { Digest } from '../../core/images/digest.js';
import { KeyedMutex } from '../../util/mutex.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { ociError } from '../errors.js';
import { type BlobStore, digestFile } from './blob-store.js';
import type { Layout } from './layout.js';
import { ensureDir, listDir } from './fs-util.js';

/** At most `slots` tasks at once, the rest in arrival order. */
class Semaphore {
  private waiting: (() => void)[] = [];
  private active = 0;
  constructor(private readonly slots: number) {}
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.slots) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** Bytes gathered from a request body before they are written together. */
const WRITE_BATCH = 1 << 20;

/** Writes every buffer at `position` (writev may write less than asked). */
async function writeAllAt(handle: fsp.FileHandle, buffers: Buffer[], position: number): Promise<number> {
  let total = 0;
  let pending = buffers;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, position + total);
    total += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    pending = rest;
  }
  return total;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface UploadInfo {
  name: string;
  startedAt: string;
}

interface HashState {
  hash: crypto.Hash;
  bytes: number;
}

export interface Upload {
  uuid: string;
  name: string;
  startedAt: Date;
  /** Bytes received so far. */
  size: number;
}

export class UploadStore {
  private readonly hashes = new Map<string, HashState>();
  private readonly infos = new Map<string, UploadInfo>();
  private readonly locks = new KeyedMutex();
  /**
   * fsync of a large upload blocks one of libuv's 4 threadpool threads for as
   * long as the disk needs; letting at most two run at once keeps threads free
   * for the reads and writes of every other request.
   */
  private readonly syncSlots = new Semaphore(2);

  constructor(
    private readonly layout: Layout,
    private readonly blobs: BlobStore,
  ) {}

  async init(): Promise<void> {
    await ensureDir(this.layout.uploadsDir);
    // An upload whose info.json never landed was cut short at creation: remove it.
    for (const uuid of await listDir(this.layout.uploadsDir)) {
      const dir = this.layout.uploadDir(uuid);
      if (!UUID_RE.test(uuid) || (await this.readInfo(uuid)) === undefined) await fsp.rm(dir, { recursive: true, force: true });
    }
  }

  async create(name: string): Promise<Upload> {
    const uuid = crypto.randomUUID();
    const dir = this.layout.uploadDir(uuid);
    await fsp.mkdir(dir);
    const info: UploadInfo = { name, startedAt: new Date().toISOString() };
    const handle = await fsp.open(path.join(dir, 'data'), 'w', 0o644);
    await handle.close();
    // info.json last: its presence is what makes the upload exist.
    await writeFileAtomic(path.join(dir, 'info.json'), JSON.stringify(info), 0o644);
    this.infos.set(uuid, info);
    this.hashes.set(uuid, { hash: crypto.createHash('sha256'), bytes: 0 });
    return { uuid, name, startedAt: new Date(info.startedAt), size: 0 };
  }

  /** The upload with this id in this repository, or BLOB_UPLOAD_UNKNOWN. */
  async get(name: string, uuid: string): Promise<Upload> {
    const info = UUID_RE.test(uuid) ? await this.readInfo(uuid) : undefined;
    if (info === undefined || info.name !== name) throw ociError('BLOB_UPLOAD_UNKNOWN', `upload ${uuid} unknown`, { uuid });
    let size: number;
    try {
      size = (await fsp.stat(path.join(this.layout.uploadDir(uuid), 'data'))).size;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw ociError('BLOB_UPLOAD_UNKNOWN', `upload ${uuid} unknown`, { uuid });
      throw err;
    }
    return { uuid, name, startedAt: new Date(info.startedAt), size };
  }

  /**
   * Appends a request body at `start` (the current size, else 416). With
   * `length`, the body must have exactly that many bytes. Returns the new size.
   * A body cut short keeps what arrived, so the client may resume from there.
   */
  async append(name: string, uuid: string, body: Readable, start: number | undefined, length: number | undefined): Promise<Upload> {
    return this.locks.run(uuid, async () => {
      const upload = await this.get(name, uuid);
      if (start !== undefined && start !== upload.size) {
        body.resume();
        throw ociError('RANGE_INVALID', `chunk starts at ${start}, upload has ${upload.size} bytes`, { size: upload.size });
      }
      const written = await this.writeBody(uuid, body, upload.size);
      if (length !== undefined && written !== length) {
        throw ociError('SIZE_INVALID', `received ${written} bytes, Content-Length said ${length}`);
      }
      return { ...upload, size: upload.size + written };
    });
  }

  /**
   * Appends an optional final body, verifies the whole upload against `digest`,
   * and moves it into the blob store. On a digest mismatch the upload is
   * removed: nothing of it is stored.
   */
  async complete(
    name: string,
    uuid: string,
    digest: Digest,
    body: Readable | undefined,
    start: number | undefined,
    length: number | undefined,
    beforeCommit: (digest: Digest, size: number) => Promise<void>,
  ): Promise<{ size: number }> {
    return this.locks.run(uuid, async () => {
      const upload = await this.get(name, uuid);
      let size = upload.size;
      if (body !== undefined) {
        if (start !== undefined && start !== size) {
          body.resume();
          throw ociError('RANGE_INVALID', `chunk starts at ${start}, upload has ${size} bytes`, { size });
        }
        const written = await this.writeBody(uuid, body, size);
        if (length !== undefined && written !== length) {
          throw ociError('SIZE_INVALID', `received ${written} bytes, Content-Length said ${length}`);
        }
        size += written;
      }
      const dataFile = path.join(this.layout.uploadDir(uuid), 'data');
      const handle = await fsp.open(dataFile, 'r+');
      try {
        await this.syncSlots.run(() => handle.sync());
      } finally {
        await handle.close();
      }
      const state = this.hashes.get(uuid);
      const actual: Digest =
        state !== undefined && state.bytes === size ? `sha256:${state.hash.copy().digest('hex')}` : (await digestFile(dataFile)).digest;
      if (actual !== digest) {
        await this.removeUnlocked(uuid);
        throw ociError('DIGEST_INVALID', `digest ${digest} does not match uploaded content (${actual})`, { digest, actual });
      }
      await beforeCommit(digest, size);
      await this.blobs.commitFile(dataFile, digest);
      await this.removeUnlocked(uuid);
      return { size };
    });
  }

  async cancel(name: string, uuid: string): Promise<void> {
    await this.locks.run(uuid, async () => {
      await this.get(name, uuid);
      await this.removeUnlocked(uuid);
    });
  }

  /** Uploads older than `maxAgeMs` (abandoned by their clients), for purging. */
  async listStale(maxAgeMs: number, now = Date.now()): Promise<string[]> {
    const out: string[] = [];
    for (const uuid of await listDir(this.layout.uploadsDir)) {
      const info = UUID_RE.test(uuid) ? await this.readInfo(uuid) : undefined;
      if (info === undefined) continue;
      if (now - Date.parse(info.startedAt) > maxAgeMs) out.push(uuid);
    }
    return out;
  }

  async purge(uuid: string): Promise<void> {
    await this.locks.run(uuid, () => this.removeUnlocked(uuid));
  }

  async count(): Promise<number> {
    return (await listDir(this.layout.uploadsDir)).filter((u) => UUID_RE.test(u)).length;
  }

  /**
   * Streams a body into the upload file at `offset`, hashing as it goes.
   * Chunks that arrive while a write is in flight are gathered into one
   * writev, so a fast client costs few syscalls.
   */
  private async writeBody(uuid: string, body: Readable, offset: number): Promise<number> {
    let state = this.hashes.get(uuid);
    if (state !== undefined && state.bytes !== offset) {
      this.hashes.delete(uuid);
      state = undefined;
    }
    const handle = await fsp.open(path.join(this.layout.uploadDir(uuid), 'data'), 'r+');
    let position = offset;
    const hashing = state;
    const sink = new Writable({
      highWaterMark: WRITE_BATCH,
      writev: (chunks, callback) => {
        const buffers = chunks.map((c) => c.chunk as Buffer);
        writeAllAt(handle, buffers, position).then(
          (n) => {
            position += n;
            if (hashing !== undefined) {
              for (const b of buffers) hashing.hash.update(b);
              hashing.bytes += n;
            }
            callback();
          },
          (err: Error) => callback(err),
        );
      },
    });
    try {
      await pipeline(body, sink);
    } catch (err) {
      // The body broke off: keep the bytes that landed; the hash may no longer match them.
      if (hashing !== undefined && hashing.bytes !== position) this.hashes.delete(uuid);
      throw ociError('BLOB_UPLOAD_INVALID', `upload body interrupted: ${(err as Error).message}`);
    } finally {
      await handle.close();
    }
    return position - offset;
  }

  private async readInfo(uuid: string): Promise<UploadInfo | undefined> {
    const cached = this.infos.get(uuid);
    if (cached !== undefined) return cached;
    try {
      const info = JSON.parse(await fsp.readFile(path.join(this.layout.uploadDir(uuid), 'info.json'), 'utf8')) as UploadInfo;
      if (typeof info.name !== 'string' || typeof info.startedAt !== 'string') return undefined;
      this.infos.set(uuid, info);
      return info;
    } catch {
      return undefined;
    }
  }

  private async removeUnlocked(uuid: string): Promise<void> {
    this.infos.delete(uuid);
    this.hashes.delete(uuid);
    await fsp.rm(this.layout.uploadDir(uuid), { recursive: true, force: true });
  }
}
