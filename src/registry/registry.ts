/**
 * The registry's operations, independent of HTTP: blobs, uploads, manifests,
 * tags, catalog and referrers over the storage modules. Every operation that
 * relies on existing content first records its use (storage/usage.ts), which
 * is what lets garbage collection run while requests are served.
 */
import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Digest } from '../core/images/digest.js';
import type { Descriptor } from '../core/images/types.js';
import { ociError } from './errors.js';
import { type ParsedManifest, parseManifest, referrerDescriptor } from './manifests.js';
import type { Reference } from './names.js';
import { BlobStore } from './storage/blob-store.js';
import { Layout } from './storage/layout.js';
import { RepositoryStore } from './storage/repository-store.js';
import { type Upload, UploadStore } from './storage/upload-store.js';
import { UsageTracker, usageKey } from './storage/usage.js';

export interface RegistryOptions {
  root: string;
  /** How long a request's use of content protects it from collection (the GC grace period). */
  usageRetentionMs?: number;
  /** Largest manifest accepted, in bytes (413 above). */
  maxManifestBytes: number;
  deleteEnabled: boolean;
}

export interface StoredManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
}

/** Immutable manifest bytes by digest, bounded by total size. */
class ManifestCache {
  private readonly map = new Map<Digest, Buffer>();
  private bytes = 0;
  constructor(private readonly maxBytes: number) {}
  get(digest: Digest): Buffer | undefined {
    return this.map.get(digest);
  }
  set(digest: Digest, data: Buffer): void {
    if (data.length > this.maxBytes / 16 || this.map.has(digest)) return;
    this.map.set(digest, data);
    this.bytes += data.length;
    while (this.bytes > this.maxBytes) {
      const [oldest, buf] = this.map.entries().next().value as [Digest, Buffer];
      this.map.delete(oldest);
      this.bytes -= buf.length;
    }
  }
  delete(digest: Digest): void {
    const buf = this.map.get(digest);
    if (buf === undefined) return;
    this.map.delete(digest);
    this.bytes -= buf.length;
  }
}

export class Registry {
  readonly layout: Layout;
  readonly blobs: BlobStore;
  readonly repos: RepositoryStore;
  readonly uploads: UploadStore;
  readonly usage: UsageTracker;
  readonly manifestCache = new ManifestCache(8 << 20);

  constructor(readonly options: RegistryOptions) {
    this.layout = new Layout(options.root);
    this.usage = new UsageTracker(options.usageRetentionMs);
    this.blobs = new BlobStore(this.layout);
    this.repos = new RepositoryStore(this.layout);
    this.uploads = new UploadStore(this.layout, this.blobs);
  }

  async init(): Promise<void> {
    await this.blobs.init();
    await this.repos.init();
    await this.uploads.init();
  }

  // ---- blobs ------------------------------------------------------------

  /** Size of a blob this repository may serve, or BLOB_UNKNOWN. */
  async statBlob(name: string, digest: Digest): Promise<number> {
    await this.usage.useAll([usageKey.link(name, digest), usageKey.blob(digest)]);
    if (!(await this.repos.hasBlob(name, digest))) throw ociError('BLOB_UNKNOWN', `blob ${digest} unknown to repository ${name}`, { digest });
    const info = await this.blobs.stat(digest);
    if (info === undefined) throw ociError('BLOB_UNKNOWN', `blob ${digest} unknown to registry`, { digest });
    return info.size;
  }

  async openBlob(name: string, digest: Digest): Promise<{ handle: import('node:fs/promises').FileHandle; size: number }> {
    await this.usage.useAll([usageKey.link(name, digest), usageKey.blob(digest)]);
    if (!(await this.repos.hasBlob(name, digest))) throw ociError('BLOB_UNKNOWN', `blob ${digest} unknown to repository ${name}`, { digest });
    const opened = await this.blobs.open(digest);
    if (opened === undefined) throw ociError('BLOB_UNKNOWN', `blob ${digest} unknown to registry`, { digest });
    return opened;
  }

  /** Removes the repository's link to a blob; the bytes go at the next garbage collection. */
  async deleteBlob(name: string, digest: Digest): Promise<void> {
    this.requireDeletes();
    if (!(await this.repos.unlinkBlob(name, digest))) throw ociError('BLOB_UNKNOWN', `blob ${digest} unknown to repository ${name}`, { digest });
  }

  // ---- uploads ----------------------------------------------------------

  startUpload(name: string): Promise<Upload> {
    return this.uploads.create(name);
  }

  getUpload(name: string, uuid: string): Promise<Upload> {
    return this.uploads.get(name, uuid);
  }

  appendUpload(name: string, uuid: string, body: Readable, start: number | undefined, length: number | undefined): Promise<Upload> {
    return this.uploads.append(name, uuid, body, start, length);
  }

  /** Finishes an upload: verified bytes become a blob linked into the repository. */
  async completeUpload(
    name: string,
    uuid: string,
    digest: Digest,
    body: Readable | undefined,
    start: number | undefined,
    length: number | undefined,
  ): Promise<void> {
    await this.uploads.complete(name, uuid, digest, body, start, length, async (d) => {
      await this.usage.useAll([usageKey.link(name, d), usageKey.blob(d)]);
    });
    await this.repos.linkBlob(name, digest);
  }

  cancelUpload(name: string, uuid: string): Promise<void> {
    return this.uploads.cancel(name, uuid);
  }

  /** Links a blob of another repository into this one; false when it cannot (the caller starts an upload instead). */
  async mountBlob(name: string, digest: Digest, from: string): Promise<boolean> {
    await this.usage.useAll([usageKey.link(name, digest), usageKey.link(from, digest), usageKey.blob(digest)]);
    if (!(await this.repos.hasBlob(from, digest))) return false;
    if ((await this.blobs.stat(digest)) === undefined) return false;
    await this.repos.linkBlob(name, digest);
    return true;
  }

  // ---- manifests --------------------------------------------------------

  async resolve(name: string, ref: Reference): Promise<Digest> {
    if (ref.kind === 'digest') return ref.digest;
    const digest = await this.repos.getTag(name, ref.tag);
    if (digest === undefined) throw ociError('MANIFEST_UNKNOWN', `manifest ${name}:${ref.tag} unknown`, { name, tag: ref.tag });
    return digest;
  }

  async getManifest(name: string, ref: Reference): Promise<StoredManifest> {
    const digest = await this.resolve(name, ref);
    await this.usage.useAll([usageKey.revision(name, digest), usageKey.blob(digest)]);
    const mediaType = await this.repos.getRevision(name, digest);
    if (mediaType === undefined) throw ociError('MANIFEST_UNKNOWN', `manifest ${digest} unknown to repository ${name}`, { digest });
    let bytes = this.manifestCache.get(digest);
    if (bytes === undefined) {
      bytes = await this.blobs.readAll(digest);
      if (bytes === undefined) throw ociError('MANIFEST_UNKNOWN', `manifest ${digest} unknown to registry`, { digest });
      this.manifestCache.set(digest, bytes);
    }
    return { digest, mediaType, bytes };
  }

  /**
   * Stores a manifest byte-exact. Blobs and child manifests it names must be
   * in the repository (MANIFEST_BLOB_UNKNOWN otherwise); its subject need not.
   */
  async putManifest(name: string, ref: Reference, bytes: Buffer, contentType: string | undefined): Promise<{ digest: Digest; subject?: Digest }> {
    const parsed = parseManifest(bytes, contentType);
    const digest: Digest = `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
    if (ref.kind === 'digest' && ref.digest !== digest) {
      throw ociError('DIGEST_INVALID', `manifest digest is ${digest}, not ${ref.digest}`, { digest: ref.digest, actual: digest });
    }
    const keys = [usageKey.revision(name, digest), usageKey.blob(digest)];
    for (const b of parsed.blobs) keys.push(usageKey.link(name, b.digest), usageKey.blob(b.digest));
    for (const m of parsed.manifests) keys.push(usageKey.revision(name, m.digest), usageKey.blob(m.digest));
    await this.usage.useAll(keys);
    await this.checkReferences(name, parsed);

    await this.blobs.putBytes(digest, bytes);
    // Referrer entry before the revision: a crash in between leaves an entry the
    // listing skips (its revision is missing), never a revision missing from the listing.
    if (parsed.subject !== undefined) {
      await this.repos.putReferrer(name, parsed.subject.digest, referrerDescriptor(parsed, digest, bytes.length));
    }
    await this.repos.putRevision(name, digest, parsed.mediaType);
    if (ref.kind === 'tag') await this.repos.setTag(name, ref.tag, digest);
    const out: { digest: Digest; subject?: Digest } = { digest };
    if (parsed.subject !== undefined) out.subject = parsed.subject.digest;
    return out;
  }

  private async checkReferences(name: string, parsed: ParsedManifest): Promise<void> {
    const missing: Digest[] = [];
    for (const [i, b] of parsed.blobs.entries()) {
      if (i > 0 && b.urls !== undefined) continue; // a foreign layer, fetched from its urls
      const info = (await this.repos.hasBlob(name, b.digest)) ? await this.blobs.stat(b.digest) : undefined;
      if (info === undefined) missing.push(b.digest);
      else if (info.size !== b.size) {
        throw ociError('MANIFEST_INVALID', `descriptor of ${b.digest} says size ${b.size}, blob has ${info.size}`, { digest: b.digest });
      }
    }
    for (const m of parsed.manifests) {
      if ((await this.repos.getRevision(name, m.digest)) === undefined) missing.push(m.digest);
    }
    if (missing.length > 0) {
      throw ociError('MANIFEST_BLOB_UNKNOWN', `manifest references unknown content: ${missing.join(', ')}`, { digests: missing, digest: missing[0] });
    }
  }

  async deleteManifest(name: string, ref: Reference): Promise<void> {
    this.requireDeletes();
    if (ref.kind === 'tag') {
      if (!(await this.repos.deleteTag(name, ref.tag))) throw ociError('MANIFEST_UNKNOWN', `tag ${ref.tag} unknown`, { tag: ref.tag });
      return;
    }
    const digest = ref.digest;
    const mediaType = await this.repos.getRevision(name, digest);
    if (mediaType === undefined) throw ociError('MANIFEST_UNKNOWN', `manifest ${digest} unknown to repository ${name}`, { digest });
    for (const tag of await this.repos.tagsOf(name, digest)) await this.repos.deleteTag(name, tag);
    const bytes = await this.blobs.readAll(digest);
    if (bytes !== undefined) {
      try {
        const parsed = parseManifest(bytes, mediaType);
        if (parsed.subject !== undefined) await this.repos.deleteReferrer(name, parsed.subject.digest, digest);
      } catch {
        // Stored manifests were valid when pushed; nothing to unindex otherwise.
      }
    }
    await this.repos.deleteRevision(name, digest);
  }

  // ---- discovery --------------------------------------------------------

  async listTags(name: string): Promise<string[]> {
    if (!(await this.repos.exists(name))) throw ociError('NAME_UNKNOWN', `repository ${name} not known to registry`, { name });
    return this.repos.listTags(name);
  }

  listRepositories(): Promise<string[]> {
    return this.repos.listRepositories();
  }

  /** Referrers of a subject, optionally filtered by artifactType; unknown subjects give an empty list. */
  async listReferrers(name: string, subject: Digest, artifactType: string | undefined): Promise<Descriptor[]> {
    const all = await this.repos.listReferrers(name, subject);
    const out: Descriptor[] = [];
    for (const d of all) {
      if (artifactType !== undefined && d.artifactType !== artifactType) continue;
      if ((await this.repos.getRevision(name, d.digest)) === undefined) continue;
      out.push(d);
    }
    return out;
  }

  private requireDeletes(): void {
    if (!this.options.deleteEnabled) throw ociError('UNSUPPORTED', 'deletes are disabled on this registry');
  }
}
