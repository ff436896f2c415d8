/**
 * The content-addressable store: blobs named by their sha256 digest. A blob
 * becomes visible only after its bytes were verified against that digest.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../images/digest.js';

export interface BlobInfo {
  digest: Digest;
  size: number;
}

/** An in-progress write. Bytes go to a temporary file until commit. */
export interface ContentWriter {
  write(chunk: Uint8Array): Promise<void>;
  /** Bytes written so far. */
  readonly size: number;
  /** Verifies (when expected is given), makes the blob visible, returns its digest. */
  commit(expected?: Digest, expectedSize?: number): Promise<BlobInfo>;
  abort(): Promise<void>;
}

export interface ContentStore {
  writer(): Promise<ContentWriter>;
  /** Stores a small blob (configs, manifests) held in memory. */
  put(data: Uint8Array | string, expected?: Digest): Promise<BlobInfo>;
  info(digest: Digest): Promise<BlobInfo | undefined>;
  has(digest: Digest): Promise<boolean>;
  read(digest: Digest): Promise<Buffer>;
  readStream(digest: Digest, start?: number): Readable;
  path(digest: Digest): string;
  delete(digest: Digest): Promise<void>;
  list(): Promise<Digest[]>;
}
