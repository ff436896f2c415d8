/**
 * Image metadata: which images exist (by config digest) and which names
 * point at them. One JSON document, rewritten atomically on every change and
 * guarded by a mutex, so a crash leaves either the old or the new document.
 * The image configs and manifests themselves live in the content store.
 */
import path from 'node:path';
import fsp from 'node:fs/promises';
import type { Digest } from '../../core/images/digest.js';
import { readJsonFile, removeTempFiles, writeJsonAtomic } from '../../util/atomic-file.js';
import { Mutex } from '../../util/mutex.js';

export interface ImageRecord {
  /** The config digest, which is the image ID. */
  id: Digest;
  /** Manifest describing the image (in the content store). */
  manifest: Digest;
  /** Uncompressed size of all layers. */
  size: number;
  /** Fully qualified names with digests: "docker.io/library/busybox@sha256:...". */
  repoDigests: string[];
  /** When a tag last moved onto this image (RFC 3339). */
  lastTagTime?: string;
  /** Parent image ID for images built locally (history). */
  parent?: Digest;
}

interface ImageDocument {
  version: 1;
  images: Record<string, ImageRecord>;
  /** Fully qualified tagged reference -> image ID. */
  tags: Record<string, Digest>;
}

export class ImageStore {
  private doc: ImageDocument = { version: 1, images: {}, tags: {} };
  private readonly file: string;
  private readonly lock = new Mutex();

  constructor(private readonly dir: string) {
    this.file = path.join(dir, 'images.json');
  }

  async load(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    await removeTempFiles(this.dir);
    const doc = await readJsonFile<ImageDocument>(this.file);
    if (doc) this.doc = doc;
  }

  get(id: Digest): ImageRecord | undefined {
    return this.doc.images[id];
  }

  all(): ImageRecord[] {
    return Object.values(this.doc.images);
  }

  tagTarget(ref: string): Digest | undefined {
    return this.doc.tags[ref];
  }

  tags(): [string, Digest][] {
    return Object.entries(this.doc.tags);
  }

  tagsOf(id: Digest): string[] {
    return Object.entries(this.doc.tags)
      .filter(([, target]) => target === id)
      .map(([ref]) => ref)
      .sort();
  }

  /** Applies a change to a copy of the document and persists it atomically. */
  async update(mutate: (doc: ImageDocument) => void): Promise<void> {
    await this.lock.run(async () => {
      const next = structuredClone(this.doc);
      mutate(next);
      await writeJsonAtomic(this.file, next);
      this.doc = next;
    });
  }
}
