/**
 * The build cache: for a parent image and a step's cache key (the
 * instruction after expansion; for COPY/ADD the checksum of the sources;
 * for RUN the build args in effect), the image that step produced. Kept in
 * one state file written atomically, so it survives daemon restarts and a
 * kill -9 leaves the previous version. `builder prune` empties it.
 */
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Digest } from '../../core/images/digest.js';
import { errnoCode } from '../../core/errdefs/index.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { Mutex } from '../../util/mutex.js';

interface CacheDocument {
  version: 1;
  /** sha256(parent + "\n" + key) -> image ID */
  entries: Record<string, Digest>;
}

export class BuildCache {
  private doc: CacheDocument = { version: 1, entries: {} };
  private readonly file: string;
  private readonly writes = new Mutex();

  constructor(dir: string) {
    this.file = path.join(dir, 'cache.json');
  }

  async load(): Promise<void> {
    await fsp.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    try {
      const parsed = JSON.parse(await fsp.readFile(this.file, 'utf8')) as Partial<CacheDocument>;
      if (parsed.version === 1 && parsed.entries && typeof parsed.entries === 'object') this.doc = { version: 1, entries: parsed.entries };
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
  }

  private static slot(parent: string, key: string): string {
    return crypto.createHash('sha256').update(`${parent}\n${key}`).digest('hex');
  }

  lookup(parent: string, key: string): Digest | undefined {
    return this.doc.entries[BuildCache.slot(parent, key)];
  }

  /** Records results in memory; save() makes them durable. */
  record(parent: string, key: string, image: Digest): void {
    this.doc.entries[BuildCache.slot(parent, key)] = image;
  }

  /** Drops entries whose image no longer exists. */
  forgetMissing(exists: (image: Digest) => boolean): void {
    for (const [slot, image] of Object.entries(this.doc.entries)) if (!exists(image)) delete this.doc.entries[slot];
  }

  images(): Set<Digest> {
    return new Set(Object.values(this.doc.entries));
  }

  get size(): number {
    return Object.keys(this.doc.entries).length;
  }

  async save(): Promise<void> {
    await this.writes.run(() => writeFileAtomic(this.file, JSON.stringify(this.doc)));
  }

  async clear(): Promise<number> {
    const n = this.size;
    this.doc = { version: 1, entries: {} };
    await this.save();
    return n;
  }
}
