/**
 * ContentStore on the local filesystem:
 *   <root>/blobs/sha256/<hex>   verified blobs, read-only
 *   <root>/ingest/<random>      writes in progress
 * A write hashes as it goes; commit checks the digest, fsyncs and renames.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { BlobInfo, ContentStore, ContentWriter } from '../../core/content/store.js';
import { type Digest, digestHex, isDigest } from '../../core/images/digest.js';
import { errnoCode, invalidArgument, notFound } from '../../core/errdefs/index.js';
import { syncDir } from '../../util/atomic-file.js';

export class LocalContentStore implements ContentStore {
  private readonly blobDir: string;
  private readonly ingestDir: string;

  constructor(root: string) {
    this.blobDir = path.join(root, 'blobs', 'sha256');
    this.ingestDir = path.join(root, 'ingest');
  }

  async init(): Promise<void> {
    await fsp.mkdir(this.blobDir, { recursive: true });
    // Writes interrupted by a crash are garbage: nothing references them.
    await fsp.rm(this.ingestDir, { recursive: true, force: true });
    await fsp.mkdir(this.ingestDir, { recursive: true });
  }

  path(digest: Digest): string {
    return path.join(this.blobDir, digestHex(digest));
  }

  async writer(): Promise<ContentWriter> {
    const tmp = path.join(this.ingestDir, crypto.randomBytes(12).toString('hex'));
    const handle = await fsp.open(tmp, 'wx', 0o644);
    return new LocalWriter(this, tmp, handle);
  }

  async put(data: Uint8Array | string, expected?: Digest): Promise<BlobInfo> {
    const w = await this.writer();
    try {
      await w.write(typeof data === 'string' ? Buffer.from(data) : data);
      return await w.commit(expected);
    } catch (err) {
      await w.abort();
      throw err;
    }
  }

  async info(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const st = await fsp.stat(this.path(digest));
      return { digest, size: st.size };
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.info(digest)) !== undefined;
  }

  async read(digest: Digest): Promise<Buffer> {
    try {
      return await fsp.readFile(this.path(digest));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw notFound(`content ${digest}: not found`);
      throw err;
    }
  }

  readStream(digest: Digest, start = 0): Readable {
    return fs.createReadStream(this.path(digest), { start });
  }

  async delete(digest: Digest): Promise<void> {
    await fsp.rm(this.path(digest), { force: true });
  }

  async list(): Promise<Digest[]> {
    const names = await fsp.readdir(this.blobDir);
    return names.map((n) => `sha256:${n}`).filter(isDigest);
  }

  /** Called by a writer once its bytes are verified. */
  async publish(tmp: string, digest: Digest): Promise<void> {
    const target = this.path(digest);
    // rename over an existing identical blob is harmless
    await fsp.rename(tmp, target);
    await syncDir(this.blobDir);
  }
}

class LocalWriter implements ContentWriter {
  private readonly hash = crypto.createHash('sha256');
  private written = 0;
  private done = false;

  constructor(
    private readonly store: LocalContentStore,
    private readonly tmp: string,
    private readonly handle: fsp.FileHandle,
  ) {}

  get size(): number {
    return this.written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.hash.update(chunk);
    this.written += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.handle.write(chunk, off, chunk.length - off);
      off += bytesWritten;
    }
  }

  async commit(expected?: Digest, expectedSize?: number): Promise<BlobInfo> {
    if (this.done) throw new Error('content writer already finished');
    this.done = true;
    const digest: Digest = `sha256:${this.hash.digest('hex')}`;
    try {
      if (expectedSize !== undefined && expectedSize !== this.written) {
        throw invalidArgument(`unexpected size ${this.written} for ${expected ?? digest}: expected ${expectedSize}`);
      }
      if (expected !== undefined && expected !== digest) {
        throw invalidArgument(`digest mismatch: expected ${expected}, got ${digest}`);
      }
      await this.handle.sync();
      await this.handle.close();
      await this.store.publish(this.tmp, digest);
      return { digest, size: this.written };
    } catch (err) {
      await this.handle.close().catch(() => {});
      await fsp.rm(this.tmp, { force: true });
      throw err;
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.handle.close().catch(() => {});
    await fsp.rm(this.tmp, { force: true });
  }
}
