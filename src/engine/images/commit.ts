/**
 * ImageCommitter: a new image from a parent image plus one layer diff (a
 * tar stream) and a run config. Used by `docker commit` and by the builder.
 *
 * The diff is stored uncompressed (its digest is its diffID, as Docker's
 * commit does) and unpacked into a new snapshot layer on top of the parent's
 * chain. An empty diff adds no layer, only a history entry marked empty.
 */
import type { Readable } from 'node:stream';
import type { ContentStore } from '../../core/content/store.js';
import type { Snapshotter } from '../../core/snapshots/snapshotter.js';
import { type Digest, chainIDs, sha256Digest } from '../../core/images/digest.js';
import {
  type HistoryEntry,
  type ImageConfig,
  type ImageRunConfig,
  type Manifest,
  MediaType,
  hostPlatform,
} from '../../core/images/types.js';
import { notFound } from '../../core/errdefs/index.js';
import { applyLayer } from '../archive/apply-layer.js';
import { rfc3339Nano } from '../../util/time.js';
import type { ImageService, LayerInput } from './image-service.js';
import type { ImageRecord } from './image-store.js';

/** The diffID of a tar with no entries (two zero blocks). */
export const EMPTY_LAYER_DIFF_ID: Digest = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

export interface CommitRequest {
  /** Image ID of the parent; null for an image FROM scratch. */
  parent: Digest | null;
  /** The layer diff as an uncompressed tar; omitted for a config-only image. */
  layer?: Readable;
  config: ImageRunConfig;
  author?: string;
  comment?: string;
  /** History's created_by (the command that made the layer). */
  createdBy: string;
  /** The container the image was committed from (docker inspect shows it). */
  container?: { id: string; config: ImageRunConfig };
}

export class ImageCommitter {
  constructor(
    private readonly content: ContentStore,
    private readonly snapshots: Snapshotter,
    private readonly images: ImageService,
  ) {}

  async commit(req: CommitRequest): Promise<ImageRecord> {
    const parentConfig = req.parent ? await this.images.config(req.parent) : undefined;
    const parentLayers = req.parent ? await this.parentLayers(req.parent, parentConfig!) : [];
    const parentDiffIDs = parentConfig?.rootfs.diff_ids ?? [];
    const parentChain = chainIDs(parentDiffIDs).at(-1) ?? null;

    const layer = req.layer ? await this.storeLayer(req.layer, parentChain) : undefined;
    const emptyLayer = !layer;
    const now = rfc3339Nano();
    const history: HistoryEntry[] = [
      ...(parentConfig?.history ?? []),
      {
        created: now,
        created_by: req.createdBy,
        ...(req.author ? { author: req.author } : {}),
        ...(req.comment ? { comment: req.comment } : {}),
        ...(emptyLayer ? { empty_layer: true } : {}),
      },
    ];
    const platform = hostPlatform();
    const config: ImageConfig = {
      architecture: parentConfig?.architecture ?? platform.architecture,
      os: parentConfig?.os ?? platform.os,
      ...(parentConfig?.variant ? { variant: parentConfig.variant } : {}),
      created: now,
      ...(req.author ? { author: req.author } : {}),
      ...(req.comment ? { comment: req.comment } : {}),
      config: req.config,
      ...(req.container ? { container: req.container.id, container_config: req.container.config } : {}),
      rootfs: { type: 'layers', diff_ids: layer ? [...parentDiffIDs, layer.diffID] : [...parentDiffIDs] },
      history,
    };
    return this.images.createImage(config, layer ? [...parentLayers, layer] : parentLayers, req.parent ? { parent: req.parent } : {});
  }

  /** The parent's layer descriptors, from its manifest. */
  private async parentLayers(parent: Digest, parentConfig: ImageConfig): Promise<LayerInput[]> {
    const record = this.images.store.get(parent);
    if (!record) throw notFound(`image ${parent} not found`);
    const manifest = JSON.parse((await this.content.read(record.manifest)).toString('utf8')) as Manifest;
    const diffIDs = parentConfig.rootfs.diff_ids;
    if (manifest.layers.length !== diffIDs.length) {
      throw new Error(`image ${parent}: manifest has ${manifest.layers.length} layers, config ${diffIDs.length}`);
    }
    return manifest.layers.map((descriptor, i) => ({ descriptor, diffID: diffIDs[i] }));
  }

  /**
   * Stores the diff as a blob and a snapshot layer. Returns undefined when
   * the diff has no entries (Docker adds no layer for it).
   */
  private async storeLayer(source: Readable, parentChain: Digest | null): Promise<LayerInput | undefined> {
    const writer = await this.content.writer();
    const draft = await this.snapshots.draft();
    try {
      let writerQueue: Promise<void> = Promise.resolve();
      source.on('data', (chunk: Buffer) => {
        writerQueue = writerQueue.then(() => writer.write(chunk));
        writerQueue.catch(() => {}); // awaited below
      });
      const applied = await applyLayer(source, draft.dir);
      await writerQueue;
      if (applied.diffID === EMPTY_LAYER_DIFF_ID) {
        await writer.abort();
        await draft.discard();
        return undefined;
      }
      const blob = await writer.commit(applied.diffID);
      const chainID = parentChain ? sha256Digest(`${parentChain} ${applied.diffID}`) : applied.diffID;
      if (await this.snapshots.layer(chainID)) {
        await draft.discard(); // the same diff on the same parent was committed before
      } else {
        await draft.commit({ chainID, diffID: applied.diffID, parent: parentChain, size: applied.size });
      }
      return { descriptor: { mediaType: MediaType.ociLayer, digest: blob.digest, size: blob.size }, diffID: applied.diffID };
    } catch (err) {
      await writer.abort();
      await draft.discard();
      throw err;
    }
  }
}
