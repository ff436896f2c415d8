/**
 * ImageService: images as Docker users see them (names, IDs, inspect, tag,
 * rmi, prune, history, import), built on the content store (configs,
 * manifests, layer blobs) and the snapshotter (unpacked layers).
 */
import type { Readable } from 'node:stream';
import type { ContentStore } from '../../core/content/store.js';
import type { Snapshotter } from '../../core/snapshots/snapshotter.js';
import { type Digest, chainIDs, isDigest } from '../../core/images/digest.js';
import {
  type Reference,
  familiarName,
  familiarString,
  parseReference,
  referenceString,
  repositoryName,
  withDefaultTag,
} from '../../core/images/reference.js';
import {
  type Descriptor,
  type HistoryEntry,
  type ImageConfig,
  type ImageRunConfig,
  type Manifest,
  MediaType,
  hostPlatform,
} from '../../core/images/types.js';
import { applyChanges } from '../../core/images/changes.js';
import { conflict, invalidArgument, isKind, notFound } from '../../core/errdefs/index.js';
import type { EventBus } from '../../core/events/bus.js';
import { Filters, globMatch } from '../../core/filters.js';
import { ImageStore, type ImageRecord } from './image-store.js';
import { applyLayer } from '../archive/apply-layer.js';
import { decompressed } from '../archive/compression.js';
import { shortId } from '../../util/ids.js';
import { rfc3339Nano } from '../../util/time.js';
import type { Logger } from '../../util/log.js';
import { KeyedMutex } from '../../util/mutex.js';

/** Who uses an image: answered by the container service. */
export interface ImageUsage {
  containersUsing(imageId: Digest): { id: string; running: boolean }[];
  /** Chain IDs that writable layers of containers sit on. */
  chainsInUse(): Promise<Digest[]>;
}

export interface ImportOptions {
  repo?: string;
  tag?: string;
  changes?: string[];
  message?: string;
  platform?: string;
}

export type DeleteRecord = { Untagged: string } | { Deleted: string };

export interface ImageSummary {
  Id: string;
  ParentId: string;
  RepoTags: string[];
  RepoDigests: string[];
  Created: number;
  Size: number;
  SharedSize: number;
  VirtualSize?: number;
  Labels: Record<string, string>;
  Containers: number;
}

export interface LayerInput {
  /** Blob in the content store (compressed or not). */
  descriptor: Descriptor;
  diffID: Digest;
}

const EMPTY_RUN_CONFIG_KEYS = {
  Hostname: '',
  Domainname: '',
  User: '',
  AttachStdin: false,
  AttachStdout: false,
  AttachStderr: false,
  Tty: false,
  OpenStdin: false,
  StdinOnce: false,
  Env: null,
  Cmd: null,
  Image: '',
  Volumes: null,
  WorkingDir: '',
  Entrypoint: null,
  OnBuild: null,
  Labels: null,
};

export class ImageService {
  readonly store: ImageStore;
  private usage: ImageUsage = { containersUsing: () => [], chainsInUse: async () => [] };
  private readonly configCache = new Map<Digest, ImageConfig>();
  private readonly gcLock = new KeyedMutex();

  constructor(
    private readonly content: ContentStore,
    private readonly snapshots: Snapshotter,
    metadataDir: string,
    private readonly events: EventBus,
    private readonly log: Logger,
  ) {
    this.store = new ImageStore(metadataDir);
  }

  setUsage(usage: ImageUsage): void {
    this.usage = usage;
  }

  async init(): Promise<void> {
    await this.store.load();
    await this.collectGarbage();
  }

  // ---- lookup ----------------------------------------------------------

  /** Finds an image by reference, full ID, or unique ID prefix. */
  tryResolve(input: string): ImageRecord | undefined {
    const byId = this.byId(input);
    if (byId) return byId;
    let ref: Reference;
    try {
      ref = withDefaultTag(parseReference(input));
    } catch {
      return this.byIdPrefix(input);
    }
    if (ref.digest) {
      const repo = repositoryName(ref);
      return this.store.all().find((img) => img.repoDigests.includes(`${repo}@${ref.digest}`));
    }
    const target = this.store.tagTarget(referenceString(ref));
    if (target) return this.store.get(target);
    return this.byIdPrefix(input);
  }

  resolve(input: string): ImageRecord {
    const img = this.tryResolve(input);
    if (!img) {
      // Docker names the normalised reference ("No such image: busybox:latest"); compose matches on it.
      let shown = input;
      if (!/^(sha256:)?[a-f0-9]{1,64}$/.test(input)) {
        try {
          shown = familiarString(withDefaultTag(parseReference(input)));
        } catch {
          // not a reference: show it as given
        }
      }
      throw notFound(`No such image: ${shown}`);
    }
    return img;
  }

  private byId(input: string): ImageRecord | undefined {
    if (isDigest(input)) return this.store.get(input);
    if (/^[a-f0-9]{64}$/.test(input)) return this.store.get(`sha256:${input}`);
    return undefined;
  }

  private byIdPrefix(input: string): ImageRecord | undefined {
    const hex = input.startsWith('sha256:') ? input.slice(7) : input;
    if (!/^[a-f0-9]{1,64}$/.test(hex)) return undefined;
    const matches = this.store.all().filter((img) => img.id.slice(7).startsWith(hex));
    return matches.length === 1 ? matches[0] : undefined;
  }

  async config(id: Digest): Promise<ImageConfig> {
    let cfg = this.configCache.get(id);
    if (!cfg) {
      cfg = JSON.parse((await this.content.read(id)).toString('utf8')) as ImageConfig;
      this.configCache.set(id, cfg);
    }
    return cfg;
  }

  /** Chain ID of the image's top layer (null for an image without layers). */
  async topChainID(id: Digest): Promise<Digest | null> {
    const cfg = await this.config(id);
    const chain = chainIDs(cfg.rootfs.diff_ids);
    return chain.length ? chain[chain.length - 1] : null;
  }

  // ---- creation ----------------------------------------------------------

  /**
   * Records an image whose layers are already unpacked and stored: writes
   * its config and an OCI manifest to the content store, then the record.
   */
  async createImage(config: ImageConfig, layers: LayerInput[], options: { parent?: Digest; manifest?: Digest } = {}): Promise<ImageRecord> {
    const configBytes = Buffer.from(JSON.stringify(config));
    const configInfo = await this.content.put(configBytes);
    let manifestDigest = options.manifest;
    if (!manifestDigest) {
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, digest: configInfo.digest, size: configInfo.size },
        layers: layers.map((l) => l.descriptor),
      };
      manifestDigest = (await this.content.put(JSON.stringify(manifest))).digest;
    }
    const chains = chainIDs(config.rootfs.diff_ids);
    let size = 0;
    for (const chainID of chains) {
      const layer = await this.snapshots.layer(chainID);
      if (!layer) throw notFound(`layer ${chainID} is not unpacked`);
      size += layer.size;
    }
    const existing = this.store.get(configInfo.digest);
    const record: ImageRecord = existing ?? {
      id: configInfo.digest,
      manifest: manifestDigest,
      size,
      repoDigests: [],
      ...(options.parent ? { parent: options.parent } : {}),
    };
    if (!existing) {
      await this.store.update((doc) => {
        doc.images[record.id] = record;
      });
    }
    return record;
  }

  /**
   * docker import: one layer from a tar stream (plain or compressed),
   * config from the change instructions.
   */
  async importImage(body: Readable, options: ImportOptions, onProgress?: (bytes: number) => void): Promise<ImageRecord> {
    let ref: Reference | undefined;
    if (options.repo) {
      ref = parseReference(options.repo);
      if (options.tag) {
        if (ref.tag || ref.digest) throw invalidArgument('cannot import with both a tag in the repository name and a tag parameter');
        ref = { ...ref, tag: options.tag };
      }
      if (ref.digest) throw invalidArgument('cannot import to a digest reference');
      ref = withDefaultTag(ref);
    }
    if (options.platform) {
      const [os, arch] = options.platform.split('/');
      const host = hostPlatform();
      if (os !== host.os || (arch !== undefined && arch !== host.architecture)) {
        throw invalidArgument(`unsupported platform ${options.platform}: this daemon runs ${host.os}/${host.architecture}`);
      }
    }
    const runConfig = applyChanges({}, options.changes ?? []);

    const writer = await this.content.writer();
    const draft = await this.snapshots.draft();
    try {
      // The stored blob is the plain tar (its digest is the diffID), whatever
      // compression the upload used: import does not keep the client's bytes.
      const { stream } = await decompressed(body);
      let writerQueue: Promise<void> = Promise.resolve();
      stream.on('data', (chunk: Buffer) => {
        writerQueue = writerQueue.then(() => writer.write(chunk));
        writerQueue.catch(() => {}); // awaited below; never an unhandled rejection
      });
      const applied = await applyLayer(stream, draft.dir, { onProgress });
      await writerQueue;
      const blob = await writer.commit(applied.diffID);
      const layer = await draft.commit({ chainID: applied.diffID, diffID: applied.diffID, parent: null, size: applied.size, tarSize: applied.tarSize });
      const now = rfc3339Nano();
      const config: ImageConfig = {
        architecture: hostPlatform().architecture,
        os: 'linux',
        created: now,
        config: runConfig,
        rootfs: { type: 'layers', diff_ids: [layer.diffID] },
        history: [{ created: now, comment: options.message || 'Imported from -' }],
        ...(options.message ? { comment: options.message } : {}),
      };
      const record = await this.createImage(config, [
        { descriptor: { mediaType: MediaType.ociLayer, digest: blob.digest, size: blob.size }, diffID: layer.diffID },
      ]);
      this.events.publish('image', 'import', record.id, ref ? { name: familiarString(ref) } : {});
      if (ref) await this.tagReference(record.id, ref);
      return record;
    } catch (err) {
      await writer.abort();
      await draft.discard();
      throw err;
    }
  }

  // ---- tags --------------------------------------------------------------

  async tag(source: string, repo: string, tag?: string): Promise<void> {
    const img = this.resolve(source);
    let ref = parseReference(repo);
    if (ref.digest) throw invalidArgument('refusing to create a tag with a digest reference');
    if (tag) {
      if (ref.tag) throw invalidArgument('cannot give a tag both in the repository name and as tag');
      ref = { ...ref, tag };
    }
    await this.tagReference(img.id, withDefaultTag(ref));
  }

  async tagReference(id: Digest, ref: Reference): Promise<void> {
    const key = referenceString(ref);
    const previous = this.store.tagTarget(key);
    await this.store.update((doc) => {
      doc.tags[key] = id;
      const rec = doc.images[id];
      if (rec) rec.lastTagTime = rfc3339Nano();
    });
    this.events.publish('image', 'tag', id, { name: familiarString(ref) });
    if (previous && previous !== id) await this.collectIfDangling(previous);
  }

  /** An image that lost its last name and is used by nobody goes away (Docker keeps it; we do too). */
  private async collectIfDangling(_id: Digest): Promise<void> {
    // Docker keeps untagged images as <none>; `image prune` removes them.
  }

  // ---- listing and inspect ---------------------------------------------

  private familiarTags(id: Digest): string[] {
    return this.store.tagsOf(id).map((r) => familiarString(parseReference(r)));
  }

  private familiarDigests(img: ImageRecord): string[] {
    return img.repoDigests.map((r) => familiarString(parseReference(r)));
  }

  async list(filters: Filters, all = false, apiVersion = 1.44): Promise<ImageSummary[]> {
    const out: ImageSummary[] = [];
    let before: ImageRecord | undefined;
    let since: ImageRecord | undefined;
    if (filters.has('before')) before = this.resolve(filters.get('before')[0]);
    if (filters.has('since')) since = this.resolve(filters.get('since')[0]);
    const dangling = filters.bool('dangling');
    const counts = new Map<string, number>();
    for (const img of this.store.all()) {
      const cfg = await this.config(img.id);
      const created = Math.floor(Date.parse(cfg.created ?? '1970-01-01T00:00:00Z') / 1000);
      const tags = this.familiarTags(img.id);
      if (dangling === true && tags.length > 0) continue;
      if (dangling === false && tags.length === 0) continue;
      if (!filters.matchLabels(cfg.config?.Labels)) continue;
      if (before && created >= Math.floor(Date.parse((await this.config(before.id)).created ?? '') / 1000)) continue;
      if (since && created <= Math.floor(Date.parse((await this.config(since.id)).created ?? '') / 1000)) continue;
      let repoTags = tags;
      if (filters.has('reference')) {
        repoTags = tags.filter((t) => filters.get('reference').some((pattern) => matchReference(pattern, t)));
        if (repoTags.length === 0) continue;
      }
      if (!all && tags.length === 0 && this.isIntermediate(img)) continue;
      counts.set(img.id, 0);
      const summary: ImageSummary = {
        Id: img.id,
        ParentId: img.parent ?? '',
        RepoTags: repoTags,
        RepoDigests: this.familiarDigests(img),
        Created: created,
        Size: img.size,
        SharedSize: -1,
        Labels: cfg.config?.Labels ?? {},
        Containers: this.usage.containersUsing(img.id).length,
      };
      if (apiVersion < 1.44) summary.VirtualSize = img.size;
      out.push(summary);
    }
    out.sort((a, b) => b.Created - a.Created);
    return out;
  }

  /** Build cache parents are hidden from `images` unless -a. */
  private isIntermediate(img: ImageRecord): boolean {
    return this.store.all().some((other) => other.parent === img.id);
  }

  async inspect(input: string, apiVersion = 1.44): Promise<Record<string, unknown>> {
    const img = this.resolve(input);
    const cfg = await this.config(img.id);
    const runConfig = { ...EMPTY_RUN_CONFIG_KEYS, ...(cfg.config ?? {}) };
    const layerDirs: string[] = [];
    const result: Record<string, unknown> = {
      Id: img.id,
      RepoTags: this.familiarTags(img.id),
      RepoDigests: this.familiarDigests(img),
      Parent: img.parent ?? '',
      Comment: cfg.comment ?? cfg.history?.[cfg.history.length - 1]?.comment ?? '',
      Created: cfg.created ?? '1970-01-01T00:00:00Z',
      DockerVersion: cfg.docker_version ?? '',
      Author: cfg.author ?? '',
      Config: runConfig,
      Architecture: cfg.architecture,
      Os: cfg.os,
      Size: img.size,
      GraphDriver: { Name: 'overlay2', Data: { LowerDir: layerDirs.join(':') } },
      RootFS: { Type: 'layers', Layers: cfg.rootfs.diff_ids },
      Metadata: { LastTagTime: img.lastTagTime ?? '0001-01-01T00:00:00Z' },
    };
    if (cfg.variant) result.Variant = cfg.variant;
    if (apiVersion <= 1.44) {
      // docker-compose 1.29 reads ContainerConfig when it recreates containers.
      result.Container = cfg.container ?? '';
      result.ContainerConfig = { ...EMPTY_RUN_CONFIG_KEYS, ...(cfg.container_config ?? {}) };
    }
    if (apiVersion < 1.44) result.VirtualSize = img.size;
    return result;
  }

  async history(input: string): Promise<Record<string, unknown>[]> {
    const img = this.resolve(input);
    const cfg = await this.config(img.id);
    const chains = chainIDs(cfg.rootfs.diff_ids);
    const sizes: number[] = [];
    for (const c of chains) sizes.push((await this.snapshots.layer(c))?.size ?? 0);
    const history: HistoryEntry[] = cfg.history?.length ? cfg.history : cfg.rootfs.diff_ids.map(() => ({}));
    let layerIndex = 0;
    const rows = history.map((h) => {
      const size = h.empty_layer ? 0 : (sizes[layerIndex++] ?? 0);
      return {
        Id: '<missing>',
        Created: Math.floor(Date.parse(h.created ?? cfg.created ?? '1970-01-01T00:00:00Z') / 1000),
        CreatedBy: h.created_by ?? '',
        Tags: null as string[] | null,
        Size: size,
        Comment: h.comment ?? '',
      };
    });
    rows.reverse();
    if (rows.length) {
      rows[0].Id = img.id;
      const tags = this.familiarTags(img.id);
      rows[0].Tags = tags.length ? tags : null;
    }
    return rows;
  }

  // ---- removal -----------------------------------------------------------

  async remove(input: string, options: { force?: boolean; noprune?: boolean } = {}): Promise<DeleteRecord[]> {
    const force = options.force ?? false;
    const img = this.resolve(input);
    const records: DeleteRecord[] = [];
    const users = this.usage.containersUsing(img.id);
    const byReference = this.referenceFor(input, img.id);

    if (byReference) {
      const tags = this.store.tagsOf(img.id);
      const key = referenceString(byReference);
      const isLastName = tags.length + img.repoDigests.length <= 1;
      if (isLastName && users.length && !force) {
        throw conflict(
          `conflict: unable to remove repository reference "${input}" (must force) - container ${shortId(users[0].id)} is using its referenced image ${shortId(img.id)}`,
        );
      }
      await this.untag(img.id, key, records);
      if (!byReference.digest) {
        // Docker: once a repository has no tag left on the image, its digest references go too
        const repo = repositoryName(byReference);
        const tagsLeft = this.store.tagsOf(img.id).some((t) => repositoryName(parseReference(t)) === repo);
        if (!tagsLeft) {
          for (const d of [...(this.store.get(img.id)?.repoDigests ?? [])]) {
            if (repositoryName(parseReference(d)) === repo) await this.untag(img.id, d, records);
          }
        }
      }
      const remaining = this.store.tagsOf(img.id).length + (this.store.get(img.id)?.repoDigests.length ?? 0);
      if (remaining === 0 && !users.some((u) => u.running) && (force || users.length === 0)) {
        await this.deleteImage(img.id, records);
      }
      return records;
    }

    const running = users.find((u) => u.running);
    if (running) {
      throw conflict(
        `conflict: unable to delete ${shortId(img.id)} (cannot be forced) - image is being used by running container ${shortId(running.id)}`,
      );
    }
    if (users.length && !force) {
      throw conflict(
        `conflict: unable to delete ${shortId(img.id)} (must be forced) - image is being used by stopped container ${shortId(users[0].id)}`,
      );
    }
    const tags = this.store.tagsOf(img.id);
    const repos = new Set(tags.map((t) => repositoryName(parseReference(t))));
    if (repos.size > 1 && !force) {
      throw conflict(`conflict: unable to delete ${shortId(img.id)} (must be forced) - image is referenced in multiple repositories`);
    }
    for (const t of tags) await this.untag(img.id, t, records);
    for (const d of [...img.repoDigests]) {
      records.push({ Untagged: familiarString(parseReference(d)) });
    }
    await this.deleteImage(img.id, records);
    return records;
  }

  /** The tag reference named by input, if input names one (not an ID). */
  private referenceFor(input: string, id: Digest): Reference | undefined {
    if (this.byId(input)) return undefined;
    try {
      const ref = withDefaultTag(parseReference(input));
      if (ref.digest) {
        return this.store.get(id)?.repoDigests.includes(`${repositoryName(ref)}@${ref.digest}`) ? ref : undefined;
      }
      return this.store.tagTarget(referenceString(ref)) === id ? ref : undefined;
    } catch {
      return undefined;
    }
  }

  private async untag(id: Digest, key: string, records: DeleteRecord[]): Promise<void> {
    const ref = parseReference(key);
    await this.store.update((doc) => {
      if (ref.digest) {
        const rec = doc.images[id];
        if (rec) rec.repoDigests = rec.repoDigests.filter((d) => d !== key);
      } else {
        delete doc.tags[key];
      }
    });
    records.push({ Untagged: familiarString(ref) });
    this.events.publish('image', 'untag', id, { name: familiarString(ref) });
  }

  private async deleteImage(id: Digest, records: DeleteRecord[]): Promise<void> {
    await this.store.update((doc) => {
      delete doc.images[id];
      for (const [ref, target] of Object.entries(doc.tags)) if (target === id) delete doc.tags[ref];
    });
    this.configCache.delete(id);
    records.push({ Deleted: id });
    this.events.publish('image', 'delete', id, {});
    await this.collectGarbage();
  }

  async prune(filters: Filters): Promise<{ ImagesDeleted: DeleteRecord[] | null; SpaceReclaimed: number }> {
    const danglingOnly = filters.bool('dangling') ?? true;
    let until: number | undefined;
    if (filters.has('until')) until = Date.parse(filters.get('until')[0]) || Number(filters.get('until')[0]) * 1000;
    const records: DeleteRecord[] = [];
    let reclaimed = 0;
    for (const img of this.store.all()) {
      if (this.usage.containersUsing(img.id).length) continue;
      const tags = this.store.tagsOf(img.id);
      if (danglingOnly && tags.length > 0) continue;
      const cfg = await this.config(img.id);
      if (!filters.matchLabels(cfg.config?.Labels)) continue;
      if (until !== undefined && Date.parse(cfg.created ?? '') >= until) continue;
      for (const t of tags) await this.untag(img.id, t, records);
      reclaimed += img.size;
      await this.deleteImage(img.id, records);
    }
    return { ImagesDeleted: records.length ? records : null, SpaceReclaimed: reclaimed };
  }

  // ---- garbage collection ----------------------------------------------

  /**
   * Removes layers and blobs no image (and no container's writable layer)
   * refers to. Runs at start and after deletions; serialised.
   */
  async collectGarbage(): Promise<void> {
    await this.gcLock.run('gc', async () => {
      const keepChains = new Set<Digest>();
      const keepBlobs = new Set<Digest>();
      for (const img of this.store.all()) {
        keepBlobs.add(img.id);
        keepBlobs.add(img.manifest);
        try {
          const manifest = JSON.parse((await this.content.read(img.manifest)).toString('utf8')) as Manifest;
          const cfg = await this.config(img.id);
          // A pull skips layers it has as plain tars: then the plain tar is what save and push use.
          for (const [i, l] of (manifest.layers ?? []).entries()) {
            const diffID = cfg.rootfs.diff_ids[i];
            keepBlobs.add(diffID !== undefined && !(await this.content.has(l.digest)) ? diffID : l.digest);
          }
          for (const c of chainIDs(cfg.rootfs.diff_ids)) keepChains.add(c);
        } catch (err) {
          if (!isKind(err, 'NotFound')) throw err;
          this.log.warn('image metadata refers to missing content', { image: img.id });
        }
      }
      for (const top of await this.usage.chainsInUse()) {
        let cur: Digest | null = top;
        while (cur !== null) {
          keepChains.add(cur);
          cur = (await this.snapshots.layer(cur))?.parent ?? null;
        }
      }
      for (const layer of await this.snapshots.listLayers()) {
        if (!keepChains.has(layer.chainID)) {
          this.log.debug('removing unreferenced layer', { chainID: layer.chainID });
          if (!this.pinnedChains.has(layer.chainID)) await this.snapshots.removeLayer(layer.chainID);
        }
      }
      for (const digest of await this.content.list()) {
        if (!keepBlobs.has(digest) && !this.pinned.has(digest)) await this.content.delete(digest);
      }
    });
  }

  /** Blobs an operation in flight has written but not yet recorded (pull, build). */
  readonly pinned = new Set<Digest>();
  /** Layers (chain IDs) an operation in flight has committed but not yet recorded. */
  readonly pinnedChains = new Set<Digest>();

  /**
   * Keeps blobs and layers from garbage collection until the returned
   * function is called (after the image that uses them is recorded).
   * Counted, so that two pulls sharing a layer both hold it.
   */
  pin(blobs: Digest[], chains: Digest[]): () => void {
    for (const d of blobs) this.pinCount(this.pinned, d, +1);
    for (const c of chains) this.pinCount(this.pinnedChains, c, +1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const d of blobs) this.pinCount(this.pinned, d, -1);
      for (const c of chains) this.pinCount(this.pinnedChains, c, -1);
    };
  }

  private readonly pinCounts = new Map<string, number>();
  private pinCount(set: Set<Digest>, d: Digest, delta: number): void {
    const key = `${set === this.pinned ? 'b' : 'c'}${d}`;
    const n = (this.pinCounts.get(key) ?? 0) + delta;
    if (n > 0) {
      this.pinCounts.set(key, n);
      set.add(d);
    } else {
      this.pinCounts.delete(key);
      set.delete(d);
    }
  }

  /**
   * Records an image whose config, manifest and layers are already stored
   * byte for byte as a registry or an archive gave them (pull, load): the
   * image ID is the config digest, the manifest digest stays the registry's.
   */
  async registerImage(
    configDigest: Digest,
    manifestDigest: Digest,
    repoDigest?: string,
    options: { preferManifest?: boolean } = {},
  ): Promise<{ record: ImageRecord; existed: boolean }> {
    const cfg = await this.config(configDigest);
    let size = 0;
    for (const chainID of chainIDs(cfg.rootfs.diff_ids)) {
      const layer = await this.snapshots.layer(chainID);
      if (!layer) throw notFound(`layer ${chainID} is not unpacked`);
      size += layer.size;
    }
    let existed = false;
    await this.store.update((doc) => {
      const rec = doc.images[configDigest];
      existed = rec !== undefined;
      const next: ImageRecord = rec ? { ...rec } : { id: configDigest, manifest: manifestDigest, size, repoDigests: [] };
      // a registry's manifest whose blobs are all here beats a local one: push is then a copy
      if (rec && options.preferManifest && rec.manifest !== manifestDigest) next.manifest = manifestDigest;
      if (repoDigest && !next.repoDigests.includes(repoDigest)) next.repoDigests = [...next.repoDigests, repoDigest];
      doc.images[configDigest] = next;
    });
    return { record: this.store.get(configDigest)!, existed };
  }

  /** Points an image at another stored manifest (push compressed its layers) and adds a repo digest. */
  async updateManifest(id: Digest, manifestDigest: Digest, repoDigest?: string): Promise<void> {
    await this.store.update((doc) => {
      const rec = doc.images[id];
      if (!rec) return;
      rec.manifest = manifestDigest;
      if (repoDigest && !rec.repoDigests.includes(repoDigest)) rec.repoDigests = [...rec.repoDigests, repoDigest];
    });
  }

  /** All image records with their familiar names, for `system df` and the like. */
  summaries(): { id: Digest; names: string[]; size: number }[] {
    return this.store.all().map((img) => ({ id: img.id, names: this.familiarTags(img.id), size: img.size }));
  }

  /** Image config run part merged into container config defaults. */
  async runConfig(id: Digest): Promise<ImageRunConfig> {
    return (await this.config(id)).config ?? {};
  }

  familiarNameOf(ref: string): string {
    return familiarName(parseReference(ref));
  }
}

/** Docker's reference filter: pattern against "name:tag" or just "name". */
function matchReference(pattern: string, familiarTag: string): boolean {
  const name = familiarTag.replace(/:[^:/]+$/, '');
  if (pattern.includes(':')) return globMatch(pattern, familiarTag);
  return globMatch(pattern, name);
}
