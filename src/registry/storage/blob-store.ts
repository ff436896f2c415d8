/**
 * Content-addressed blob storage shared by every repository. A blob file
 * appears only by rename of a complete file whose digest was verified by the
 * caller, so a reader (or a restart after kill -9) never sees a partial blob.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import { errnoCode } from '../../core/errdefs/index.js';
import type { Digest } from '../../core/images/digest.js';
import { syncDir } from '../../util/atomic-file.js';
import type { Layout } from './layout.js';

export interface BlobInfo {
  size: number;
  /** Last time the file was created or re-uploaded (GC's grace period reads it). */
  mtimeMs: number;
}

export class BlobStore {
  constructor(private readonly layout: Layout) {}

  /** Creates the 256 prefix directories once, so committing a blob never has to. */
  async init(): Promise<void> {
    await fsp.mkdir(this.layout.blobsDir, { recursive: true });
    await fsp.mkdir(this.layout.tmpDir, { recursive: true });
    const existing = new Set(await fsp.readdir(this.layout.blobsDir));
    let created = false;
    for (let i = 0; i < 256; i++) {
      const prefix = i.toString(16).padStart(2, '0');
      if (existing.has(prefix)) continue;
      await fsp.mkdir(path.join(this.layout.blobsDir, prefix), { recursive: true });
      created = true;
    }
    if (created) await syncDir(this.layout.blobsDir);
    // Leftovers of writes cut short by a crash: never visible, just space.
    for (const name of await fsp.readdir(this.layout.tmpDir)) {
      await fsp.rm(path.join(this.layout.tmpDir, name), { force: true, recursive: true });
    }
  }

  path(digest: Digest): string {
    return this.layout.blobPath(digest);
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const st = await fsp.stat(this.layout.blobPath(digest));
      return { size: st.size, mtimeMs: st.mtimeMs };
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Opens a blob for reading; undefined when it does not exist. The caller closes the handle. */
  async open(digest: Digest): Promise<{ handle: fsp.FileHandle; size: number } | undefined> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(this.layout.blobPath(digest), 'r');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const st = await handle.stat();
      return { handle, size: st.size };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async readAll(digest: Digest): Promise<Buffer | undefined> {
    try {
      return await fsp.readFile(this.layout.blobPath(digest));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Moves a complete, fsynced, verified file into place. When the blob is
   * already stored the file is dropped and the stored one touched, so the
   * garbage collector's grace period starts again for it.
   */
  async commitFile(file: string, digest: Digest): Promise<void> {
    const target = this.layout.blobPath(digest);
    if (await this.touch(digest)) {
      await fsp.rm(file, { force: true });
      return;
    }
    await fsp.rename(file, target);
    await syncDir(path.dirname(target));
  }

  /** Stores small content (manifests) after the caller computed its digest. */
  async putBytes(digest: Digest, data: Uint8Array): Promise<void> {
    if (await this.touch(digest)) return;
    const tmp = this.tempPath();
    const handle = await fsp.open(tmp, 'w', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await this.commitFile(tmp, digest);
  }

  /** A fresh path in the temporary area (same filesystem, so rename works). */
  tempPath(): string {
    return path.join(this.layout.tmpDir, crypto.randomBytes(12).toString('hex'));
  }

  async delete(digest: Digest): Promise<boolean> {
    try {
      await fsp.unlink(this.layout.blobPath(digest));
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** Every stored blob, one prefix directory at a time (never the whole list in memory at once per call). */
  async *list(): AsyncGenerator<{ digest: Digest; info: BlobInfo }> {
    let prefixes: string[];
    try {
      prefixes = (await fsp.readdir(this.layout.blobsDir)).sort();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    for (const prefix of prefixes) {
      const dir = path.join(this.layout.blobsDir, prefix);
      let names: string[];
      try {
        names = await fsp.readdir(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        if (!/^[a-f0-9]{64}$/.test(name)) continue;
        try {
          const st = await fsp.stat(path.join(dir, name));
          yield { digest: `sha256:${name}`, info: { size: st.size, mtimeMs: st.mtimeMs } };
        } catch {
          // Deleted while listing.
        }
      }
    }
  }

  private async touch(digest: Digest): Promise<boolean> {
    const now = new Date();
    try {
      await fsp.utimes(this.layout.blobPath(digest), now, now);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }
}

/** Streams a file and returns its sha256 digest and size (used when a hash state was lost). */
export async function digestFile(file: string): Promise<{ digest: Digest; size: number }> {
  const hash = crypto.createHash('sha256');
  let size = 0;
  const stream = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}
