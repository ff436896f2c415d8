/**
 * Snapshots: unpacked layers (committed, immutable, keyed by chain ID) and
 * active snapshots (a writable layer over a chain, one per container).
 */
import type { Digest } from '../images/digest.js';

export interface LayerInfo {
  chainID: Digest;
  diffID: Digest;
  parent: Digest | null;
  /** Bytes of file content in this layer alone. */
  size: number;
  /** Bytes of the layer's plain tar (its diff), when known: save writes it without decompressing twice. */
  tarSize?: number;
}

/** A directory being filled with a layer's files before it is committed. */
export interface LayerDraft {
  /** Where the layer's files go. */
  readonly dir: string;
  commit(info: { chainID: Digest; diffID: Digest; parent: Digest | null; size: number; tarSize?: number }): Promise<LayerInfo>;
  discard(): Promise<void>;
}

export interface OverlayMount {
  lowerDirs: string[];
  upperDir: string;
  workDir: string;
}

export interface Snapshotter {
  layer(chainID: Digest): Promise<LayerInfo | undefined>;
  listLayers(): Promise<LayerInfo[]>;
  draft(): Promise<LayerDraft>;
  removeLayer(chainID: Digest): Promise<void>;
  /** Creates the writable layer `key` over the chain ending at parent (null: empty). */
  prepare(key: string, parent: Digest | null): Promise<OverlayMount>;
  mounts(key: string): Promise<OverlayMount>;
  remove(key: string): Promise<void>;
  /** Bytes written into the writable layer. */
  usage(key: string): Promise<number>;
}
