/**
 * Per-repository metadata: which blobs a repository may serve, its manifest
 * revisions (with the Content-Type they were pushed with), tags, and the
 * referrers index. Every write is atomic and durable (temp file, fsync,
 * rename, directory fsync); the registry root is owned by one process (see
 * root-lock.ts), so the small read caches here stay coherent.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Digest } from '../../core/images/digest.js';
import type { Descriptor } from '../../core/images/types.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import type { Layout } from './layout.js';
import { createMarker, ensureDir, exists, forgetDirs, listDir, readTextOrUndefined, removeFile } from './fs-util.js';

const HEX64 = /^[a-f0-9]{64}$/;

/** A bounded map that drops its oldest entries; enough for hot tags and revisions. */
class BoundedCache<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  set(key: string, value: V): void {
    if (this.map.has(key)) this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  clear(): void {
    this.map.clear();
  }
}

export class RepositoryStore {
  private readonly tagCache = new BoundedCache<Digest>(10_000);
  private readonly revisionCache = new BoundedCache<string>(10_000);

  constructor(private readonly layout: Layout) {}

  async init(): Promise<void> {
    await ensureDir(this.layout.reposDir);
  }

  // ---- blob links -------------------------------------------------------

  async hasBlob(name: string, digest: Digest): Promise<boolean> {
    return exists(this.layout.blobLink(name, digest));
  }

  async linkBlob(name: string, digest: Digest): Promise<void> {
    await createMarker(this.layout.blobLink(name, digest));
  }

  async unlinkBlob(name: string, digest: Digest): Promise<boolean> {
    return removeFile(this.layout.blobLink(name, digest));
  }

  async listBlobLinks(name: string): Promise<Digest[]> {
    return (await listDir(this.layout.blobLinkDir(name))).filter((n) => HEX64.test(n)).map((n) => `sha256:${n}` as Digest);
  }

  // ---- manifest revisions ------------------------------------------------

  /** The Content-Type the revision was pushed with; undefined when the repository has no such manifest. */
  async getRevision(name: string, digest: Digest): Promise<string | undefined> {
    const key = `${name}\0${digest}`;
    const cached = this.revisionCache.get(key);
    if (cached !== undefined) return cached;
    const mediaType = await readTextOrUndefined(this.layout.manifestRevision(name, digest));
    if (mediaType !== undefined) this.revisionCache.set(key, mediaType);
    return mediaType;
  }

  async putRevision(name: string, digest: Digest, mediaType: string): Promise<void> {
    const file = this.layout.manifestRevision(name, digest);
    await ensureDir(path.dirname(file));
    await writeFileAtomic(file, mediaType, 0o644);
    this.revisionCache.set(`${name}\0${digest}`, mediaType);
  }

  async deleteRevision(name: string, digest: Digest): Promise<boolean> {
    this.revisionCache.delete(`${name}\0${digest}`);
    return removeFile(this.layout.manifestRevision(name, digest));
  }

  async listRevisions(name: string): Promise<Digest[]> {
    return (await listDir(this.layout.manifestsDir(name))).filter((n) => HEX64.test(n)).map((n) => `sha256:${n}` as Digest);
  }

  /** Modification time of a revision file (GC's grace period for untagged manifests). */
  async revisionMtime(name: string, digest: Digest): Promise<number | undefined> {
    try {
      return (await fsp.stat(this.layout.manifestRevision(name, digest))).mtimeMs;
    } catch {
      return undefined;
    }
  }

  // ---- tags -------------------------------------------------------------

  async getTag(name: string, tag: string): Promise<Digest | undefined> {
    const key = `${name}\0${tag}`;
    const cached = this.tagCache.get(key);
    if (cached !== undefined) return cached;
    const text = await readTextOrUndefined(this.layout.tag(name, tag));
    if (text === undefined || !/^sha256:[a-f0-9]{64}$/.test(text)) return undefined;
    this.tagCache.set(key, text as Digest);
    return text as Digest;
  }

  async setTag(name: string, tag: string, digest: Digest): Promise<void> {
    const file = this.layout.tag(name, tag);
    await ensureDir(path.dirname(file));
    await writeFileAtomic(file, digest, 0o644);
    this.tagCache.set(`${name}\0${tag}`, digest);
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    this.tagCache.delete(`${name}\0${tag}`);
    return removeFile(this.layout.tag(name, tag));
  }

  /** Tags in byte order (as CNCF distribution sorts them; `last` pages by the same order). */
  async listTags(name: string): Promise<string[]> {
    return (await listDir(this.layout.tagsDir(name))).filter((t) => !t.startsWith('.')).sort(compareBytes);
  }

  async tagsOf(name: string, digest: Digest): Promise<string[]> {
    const out: string[] = [];
    for (const tag of await this.listTags(name)) {
      if ((await this.getTag(name, tag)) === digest) out.push(tag);
    }
    return out;
  }

  // ---- referrers --------------------------------------------------------

  async putReferrer(name: string, subject: Digest, descriptor: Descriptor): Promise<void> {
    const file = this.layout.referrer(name, subject, descriptor.digest);
    await ensureDir(path.dirname(file));
    await writeFileAtomic(file, JSON.stringify(descriptor), 0o644);
  }

  async deleteReferrer(name: string, subject: Digest, digest: Digest): Promise<boolean> {
    return removeFile(this.layout.referrer(name, subject, digest));
  }

  async listReferrers(name: string, subject: Digest): Promise<Descriptor[]> {
    const dir = this.layout.referrersDir(name, subject);
    const out: Descriptor[] = [];
    for (const entry of (await listDir(dir)).filter((n) => HEX64.test(n)).sort()) {
      const text = await readTextOrUndefined(path.join(dir, entry));
      if (text === undefined) continue;
      try {
        out.push(JSON.parse(text) as Descriptor);
      } catch {
        // Atomic writes make this unreachable; skip rather than fail the listing.
      }
    }
    return out;
  }

  /** Subjects that have referrers in a repository (for GC). */
  async listReferrerSubjects(name: string): Promise<Digest[]> {
    return (await listDir(this.layout.referrersRoot(name))).filter((n) => HEX64.test(n)).map((n) => `sha256:${n}` as Digest);
  }

  async removeEmptyReferrersDir(name: string, subject: Digest): Promise<void> {
    const dir = this.layout.referrersDir(name, subject);
    try {
      await fsp.rmdir(dir);
      forgetDirs(dir);
    } catch {
      // Not empty (a referrer arrived meanwhile) or already gone.
    }
  }

  // ---- repositories -----------------------------------------------------

  /** A repository exists once something was pushed to it. */
  async exists(name: string): Promise<boolean> {
    return (await exists(this.layout.manifestsDir(name))) || (await exists(this.layout.blobLinkDir(name)));
  }

  /** Names of repositories holding manifests, in byte order. */
  async listRepositories(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      if (entries.some((e) => e.name === '_manifests' && e.isDirectory())) out.push(prefix);
      for (const e of entries) {
        if (!e.isDirectory() || e.name.startsWith('_') || e.name.startsWith('.')) continue;
        await walk(path.join(dir, e.name), prefix === '' ? e.name : `${prefix}/${e.name}`);
      }
    };
    await walk(this.layout.reposDir, '');
    return out.filter((n) => n !== '').sort(compareBytes);
  }

  /** Names of every repository directory with any metadata (GC walks these). */
  async listAllRepositories(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      if (prefix !== '' && entries.some((e) => e.name.startsWith('_') && e.isDirectory())) out.push(prefix);
      for (const e of entries) {
        if (!e.isDirectory() || e.name.startsWith('_') || e.name.startsWith('.')) continue;
        await walk(path.join(dir, e.name), prefix === '' ? e.name : `${prefix}/${e.name}`);
      }
    };
    await walk(this.layout.reposDir, '');
    return out.sort(compareBytes);
  }

  /**
   * Removes temporary files an atomic write left in this repository's metadata
   * directories when a crash cut it short. Only old ones: a young one may
   * belong to a write in progress.
   */
  async removeStaleTemp(name: string, olderThanMs: number, now = Date.now()): Promise<number> {
    const dirs = [this.layout.tagsDir(name), this.layout.manifestsDir(name), this.layout.blobLinkDir(name)];
    for (const subject of await this.listReferrerSubjects(name)) dirs.push(this.layout.referrersDir(name, subject));
    let removed = 0;
    for (const dir of dirs) {
      for (const entry of await listDir(dir)) {
        if (!entry.startsWith('.tmp-')) continue;
        const file = path.join(dir, entry);
        try {
          if (now - (await fsp.stat(file)).mtimeMs < olderThanMs) continue;
          await fsp.unlink(file);
          removed++;
        } catch {
          // Renamed into place or removed meanwhile.
        }
      }
    }
    return removed;
  }

  clearCaches(): void {
    this.tagCache.clear();
    this.revisionCache.clear();
  }
}

export function compareBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
