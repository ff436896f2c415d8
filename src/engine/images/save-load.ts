/**
 * Images without a registry: `save` writes Docker's archive layout
 * (manifest.json + repositories) and the OCI image layout (oci-layout,
 * index.json, blobs/sha256/) in one tar, sharing blobs, so both `docker load`
 * (any version) and OCI tools read it; layers are plain tars, as Docker
 * writes them. `load` reads either layout: the archive is spooled to a
 * private directory (entry names cleaned, symlinks resolved inside the
 * archive, never created), then every layer is verified (diffID, and the
 * blob digest for OCI layouts) while it is unpacked. Nothing is recorded
 * until an image is complete; a failure leaves nothing behind.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { ContentStore } from '../../core/content/store.js';
import type { Snapshotter } from '../../core/snapshots/snapshotter.js';
import { type Digest, chainIDs, digestHex, isDigest, sha256Digest } from '../../core/images/digest.js';
import { familiarString, parseReference, referenceString, repositoryName, withDefaultTag } from '../../core/images/reference.js';
import { type Descriptor, type ImageConfig, type Index, type Manifest, MediaType, hostPlatform } from '../../core/images/types.js';
import { invalidArgument, notFound } from '../../core/errdefs/index.js';
import type { EventBus } from '../../core/events/bus.js';
import type { ImageService } from './image-service.js';
import { LayerUnpacker, cleanEntryPath } from '../archive/apply-layer.js';
import { decompressed } from '../archive/compression.js';
import type { ProgressSink } from '../distribution/progress.js';
import { detail, shortDigest } from '../distribution/progress.js';
import { parseManifest, selectPlatform } from '../distribution/manifests.js';
import type { Logger } from '../../util/log.js';

export interface SaveItem {
  id: Digest;
  repoTags: string[];
}

/** One image found in an archive, ready to load. */
interface ArchiveImage {
  configBytes: Buffer;
  /** Archive paths of the layer blobs, in order. */
  layers: string[];
  /** Expected blob digests (OCI layout), else undefined. */
  layerDigests?: (Digest | undefined)[];
  /** The archive's manifest bytes, kept when the layout has them (stable digest). */
  manifestBytes?: Buffer;
  tags: string[];
}

export class SaveLoad {
  constructor(
    private readonly content: ContentStore,
    private readonly snapshots: Snapshotter,
    private readonly images: ImageService,
    private readonly events: EventBus,
    private readonly tmpRoot: string,
    private readonly log: Logger,
  ) {}

  async init(): Promise<void> {
    await fsp.rm(this.tmpRoot, { recursive: true, force: true });
    await fsp.mkdir(this.tmpRoot, { recursive: true, mode: 0o700 });
  }

  // ---- save --------------------------------------------------------------

  /** Which images and names `save` writes (throws before any byte is sent). */
  resolveForSave(names: string[]): SaveItem[] {
    if (names.length === 0) throw invalidArgument('no images given to save');
    const items = new Map<Digest, SaveItem>();
    for (const name of names) {
      const img = this.images.resolve(name);
      const item = items.get(img.id) ?? { id: img.id, repoTags: [] };
      items.set(img.id, item);
      let ref;
      try {
        ref = parseReference(name);
      } catch {
        continue; // an ID: no names
      }
      if (/^[a-f0-9]{12,64}$/.test(name) || name.startsWith('sha256:')) continue;
      if (ref.tag) {
        item.repoTags.push(familiarString(ref));
      } else if (!ref.digest) {
        // a repository without a tag: every tag of it that names this image
        for (const t of this.images.store.tagsOf(img.id)) {
          const r = parseReference(t);
          if (repositoryName(r) === repositoryName(ref)) item.repoTags.push(familiarString(r));
        }
      }
    }
    for (const item of items.values()) item.repoTags = [...new Set(item.repoTags)];
    return [...items.values()];
  }

  /** Writes the archive of the images to `out`. */
  async save(items: SaveItem[], out: NodeJS.WritableStream): Promise<void> {
    const pack = tar.pack();
    const done = pipeline(pack, out);
    const written = new Set<string>();
    const mtime = new Date(0);
    const addBuffer = async (name: string, data: Buffer): Promise<void> => {
      await new Promise<void>((resolve, reject) => pack.entry({ name, size: data.length, mode: 0o644, mtime }, data, (err) => (err ? reject(err) : resolve())));
    };
    const manifestJson: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
    const repositories: Record<string, Record<string, string>> = {};
    const indexEntries: Descriptor[] = [];
    try {
      for (const item of items) {
        const img = this.images.store.get(item.id);
        if (!img) throw notFound(`No such image: ${item.id}`);
        const configBytes = await this.content.read(item.id);
        const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
        const stored = JSON.parse((await this.content.read(img.manifest)).toString('utf8')) as Manifest;
        const configPath = `blobs/sha256/${digestHex(item.id)}`;
        if (!written.has(configPath)) {
          await addBuffer(configPath, configBytes);
          written.add(configPath);
        }
        const layerDescriptors: Descriptor[] = [];
        const chains = chainIDs(config.rootfs.diff_ids);
        for (let i = 0; i < config.rootfs.diff_ids.length; i++) {
          const diffID = config.rootfs.diff_ids[i];
          const layerPath = `blobs/sha256/${digestHex(diffID)}`;
          const { size, open } = await this.plainLayer(diffID, stored.layers[i], chains[i]);
          if (!written.has(layerPath)) {
            await new Promise<void>((resolve, reject) => {
              const entry = pack.entry({ name: layerPath, size, mode: 0o644, mtime }, (err) => (err ? reject(err) : resolve()));
              open().then((src) => pipeline(src, entry).catch(reject), reject);
            });
            written.add(layerPath);
          }
          layerDescriptors.push({ mediaType: MediaType.ociLayer, digest: diffID, size });
        }
        const ociManifest: Manifest = {
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: item.id, size: configBytes.length },
          layers: layerDescriptors,
        };
        const manifestBytes = Buffer.from(JSON.stringify(ociManifest));
        const manifestDigest = sha256Digest(manifestBytes);
        const manifestPath = `blobs/sha256/${digestHex(manifestDigest)}`;
        if (!written.has(manifestPath)) {
          await addBuffer(manifestPath, manifestBytes);
          written.add(manifestPath);
        }
        const base: Descriptor = { mediaType: MediaType.ociManifest, digest: manifestDigest, size: manifestBytes.length };
        if (item.repoTags.length === 0) indexEntries.push(base);
        for (const t of item.repoTags) {
          const ref = withDefaultTag(parseReference(t));
          indexEntries.push({ ...base, annotations: { 'io.containerd.image.name': referenceString(ref), 'org.opencontainers.image.ref.name': ref.tag ?? 'latest' } });
          const repo = familiarString({ ...ref, tag: undefined });
          (repositories[repo] ??= {})[ref.tag ?? 'latest'] = digestHex(config.rootfs.diff_ids[config.rootfs.diff_ids.length - 1] ?? item.id);
        }
        manifestJson.push({
          Config: configPath,
          RepoTags: item.repoTags.length ? item.repoTags : null,
          Layers: config.rootfs.diff_ids.map((d) => `blobs/sha256/${digestHex(d)}`),
        });
      }
      const index: Index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: indexEntries };
      await addBuffer('index.json', Buffer.from(JSON.stringify(index)));
      await addBuffer('manifest.json', Buffer.from(JSON.stringify(manifestJson)));
      await addBuffer('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
      if (Object.keys(repositories).length) await addBuffer('repositories', Buffer.from(JSON.stringify(repositories)));
      pack.finalize();
      await done;
    } catch (err) {
      pack.destroy(err as Error);
      throw err;
    }
  }

  /** A layer as a plain tar: the stored tar, or the stored compressed blob decompressed; and its size. */
  private async plainLayer(diffID: Digest, desc: Descriptor | undefined, chainID: Digest): Promise<{ size: number; open: () => Promise<Readable> }> {
    const plain = await this.content.info(diffID);
    if (plain) return { size: plain.size, open: async () => this.content.readStream(diffID) };
    if (!desc || !(await this.content.has(desc.digest))) throw notFound(`the blob of layer ${diffID} is not stored locally`);
    const open = async (): Promise<Readable> => (await decompressed(this.content.readStream(desc.digest))).stream;
    let size = (await this.snapshots.layer(chainID))?.tarSize;
    if (size === undefined) {
      // layers unpacked before sizes were recorded: count once
      size = 0;
      for await (const c of await open()) size += (c as Buffer).length;
    }
    return { size, open };
  }

  // ---- load --------------------------------------------------------------

  /** Reads an archive from `body`; reports progress; returns the names (or IDs) loaded. */
  async load(body: Readable, progress: ProgressSink): Promise<string[]> {
    const dir = path.join(this.tmpRoot, `load-${crypto.randomBytes(8).toString('hex')}`);
    await fsp.mkdir(dir, { mode: 0o700 });
    try {
      const links = await this.spool(body, dir);
      const resolve = (p: string): string => resolveInArchive(p, links);
      const images = await this.readLayout(dir, resolve);
      const loaded: string[] = [];
      for (const img of images) loaded.push(...(await this.loadImage(dir, resolve, img, progress)));
      this.log.info('loaded images', { images: loaded });
      return loaded;
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }

  /** Writes the archive's regular files under dir; returns its symlinks (never created on disk). */
  private async spool(body: Readable, dir: string): Promise<Map<string, string>> {
    const links = new Map<string, string>();
    const extract = tar.extract();
    let entries = 0;
    const source = body.on('error', (err) => extract.destroy(err));
    const { stream } = await decompressed(source);
    stream.on('error', (err) => extract.destroy(err));
    stream.pipe(extract);
    try {
      for await (const entry of extract) {
        entries++;
        const header = entry.header;
        const rel = cleanEntryPath(header.name);
        if (rel === '' || header.type === 'directory') {
          entry.resume();
          continue;
        }
        if (header.type === 'symlink' || header.type === 'link') {
          const target = header.type === 'link' ? cleanEntryPath(header.linkname ?? '') : path.posix.join(path.posix.dirname(rel), header.linkname ?? '');
          links.set(rel, cleanEntryPath(target));
          entry.resume();
          continue;
        }
        if (header.type !== 'file' && header.type !== 'contiguous-file') {
          entry.resume();
          continue;
        }
        const abs = path.join(dir, rel);
        await fsp.mkdir(path.dirname(abs), { recursive: true });
        await pipeline(entry as unknown as Readable, fs.createWriteStream(abs, { flags: 'wx', mode: 0o600 }));
      }
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      if (/Unexpected end of data|Invalid tar header|premature/i.test(message)) throw invalidArgument(`invalid archive: the tar is truncated or corrupt (${message})`);
      throw err;
    }
    if (entries === 0) throw invalidArgument('invalid archive: the tar is empty');
    return links;
  }

  private async readLayout(dir: string, resolve: (p: string) => string): Promise<ArchiveImage[]> {
    const read = async (p: string): Promise<Buffer> => {
      try {
        return await fsp.readFile(path.join(dir, resolve(p)));
      } catch {
        throw invalidArgument(`invalid archive: ${p} is missing`);
      }
    };
    const exists = (p: string): boolean => fs.existsSync(path.join(dir, resolve(p)));
    if (exists('manifest.json')) {
      let entries: { Config?: unknown; RepoTags?: unknown; Layers?: unknown }[];
      try {
        entries = JSON.parse((await read('manifest.json')).toString('utf8'));
        if (!Array.isArray(entries)) throw new Error('not a list');
      } catch {
        throw invalidArgument('invalid archive: manifest.json is not a list of images');
      }
      const out: ArchiveImage[] = [];
      for (const e of entries) {
        if (typeof e.Config !== 'string' || !Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === 'string')) {
          throw invalidArgument('invalid archive: manifest.json entry without Config or Layers');
        }
        const tags = Array.isArray(e.RepoTags) ? e.RepoTags.filter((t): t is string => typeof t === 'string') : [];
        out.push({ configBytes: await read(e.Config), layers: e.Layers as string[], tags });
      }
      return out;
    }
    if (exists('index.json')) {
      const blob = async (d: Descriptor): Promise<Buffer> => {
        const bytes = await read(`blobs/sha256/${digestHex(d.digest)}`);
        if (sha256Digest(bytes) !== d.digest) throw invalidArgument(`invalid archive: blob ${d.digest} does not match its digest`);
        return bytes;
      };
      const top = parseManifest(await read('index.json'), MediaType.ociIndex);
      if (top.kind !== 'index') throw invalidArgument('invalid archive: index.json is not an index');
      const out: ArchiveImage[] = [];
      for (const d of top.index.manifests) {
        let desc = d;
        let fetched = parseManifest(await blob(desc), desc.mediaType);
        if (fetched.kind === 'index') {
          desc = selectPlatform(fetched.index, hostPlatform(), 'the archive');
          fetched = parseManifest(await blob(desc), desc.mediaType);
        }
        if (fetched.kind !== 'manifest') throw invalidArgument('invalid archive: nested index');
        const name = d.annotations?.['io.containerd.image.name'];
        out.push({
          configBytes: await blob(fetched.manifest.config),
          layers: fetched.manifest.layers.map((l) => `blobs/sha256/${digestHex(l.digest)}`),
          layerDigests: fetched.manifest.layers.map((l) => l.digest),
          manifestBytes: await blob(desc),
          tags: name ? [name] : [],
        });
      }
      return out;
    }
    throw invalidArgument('invalid archive: neither manifest.json (docker save) nor index.json (OCI layout) found');
  }

  private async loadImage(dir: string, resolve: (p: string) => string, img: ArchiveImage, progress: ProgressSink): Promise<string[]> {
    const configDigest = sha256Digest(img.configBytes);
    let config: ImageConfig;
    try {
      config = JSON.parse(img.configBytes.toString('utf8')) as ImageConfig;
    } catch {
      throw invalidArgument('invalid archive: image config is not JSON');
    }
    const diffIDs = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIDs) || !diffIDs.every(isDigest) || diffIDs.length !== img.layers.length) {
      throw invalidArgument(`invalid archive: image ${configDigest} lists ${img.layers.length} layers but its config ${diffIDs?.length ?? 0} diff IDs`);
    }
    const chains = chainIDs(diffIDs);
    const descriptors: Descriptor[] = [];
    const unpins = [this.images.pin([configDigest], chains)];
    try {
      for (let i = 0; i < img.layers.length; i++) {
        const file = path.join(dir, resolve(img.layers[i]));
        const st = await fsp.stat(file).catch(() => undefined);
        if (!st) throw invalidArgument(`invalid archive: layer ${img.layers[i]} is missing`);
        const descriptor = await this.loadLayer(file, st.size, diffIDs[i], chains[i], i > 0 ? chains[i - 1] : null, img.layerDigests?.[i], progress);
        unpins.push(this.images.pin([descriptor.digest], []));
        descriptors.push(descriptor);
      }
      {
        await this.content.put(img.configBytes, configDigest);
        let manifestBytes = img.manifestBytes;
        if (!manifestBytes) {
          const manifest: Manifest = {
            schemaVersion: 2,
            mediaType: MediaType.ociManifest,
            config: { mediaType: MediaType.ociConfig, digest: configDigest, size: img.configBytes.length },
            layers: descriptors,
          };
          manifestBytes = Buffer.from(JSON.stringify(manifest));
        }
        const manifestInfo = await this.content.put(manifestBytes);
        const { record } = await this.images.registerImage(configDigest, manifestInfo.digest);
        const names: string[] = [];
        for (const t of img.tags) {
          const ref = withDefaultTag(parseReference(t));
          if (ref.digest && !ref.tag) continue;
          await this.images.tagReference(record.id, { ...ref, digest: undefined });
          names.push(familiarString({ ...ref, digest: undefined }));
        }
        this.events.publish('image', 'load', record.id, names[0] ? { name: names[0] } : {});
        if (names.length === 0) {
          progress({ stream: `Loaded image ID: ${record.id}\n` });
          return [record.id];
        }
        for (const n of names) progress({ stream: `Loaded image: ${n}\n` });
        return names;
      }
    } finally {
      for (const unpin of unpins) unpin();
    }
  }

  /** Stores a layer blob as it is in the archive and unpacks it, checking its digest and diffID. */
  private async loadLayer(
    file: string,
    size: number,
    diffID: Digest,
    chainID: Digest,
    parent: Digest | null,
    expected: Digest | undefined,
    progress: ProgressSink,
  ): Promise<Descriptor> {
    const id = shortDigest(diffID);
    const existing = await this.snapshots.layer(chainID);
    const writer = await this.content.writer();
    const draft = existing ? undefined : await this.snapshots.draft();
    let committed = false;
    let unpacker: LayerUnpacker | undefined;
    try {
      let consumed = 0;
      let last = 0;
      const raw = fs.createReadStream(file, { highWaterMark: 1 << 20 });
      const tee = new PassThrough({ highWaterMark: 1 << 20 });
      const copying = (async () => {
        for await (const chunk of raw) {
          await writer.write(chunk as Buffer);
          consumed += (chunk as Buffer).length;
          if (consumed - last > 4 << 20 || consumed === size) {
            last = consumed;
            progress(detail('Loading layer', id, consumed, size));
          }
          if (!tee.write(chunk)) await new Promise<void>((r) => tee.once('drain', r));
        }
        tee.end();
      })().catch((err: Error) => {
        tee.destroy(err);
        throw err;
      });
      const { stream, compression } = await decompressed(tee);
      let applied: { diffID: Digest; size: number; tarSize: number };
      if (draft) {
        unpacker = new LayerUnpacker(draft.dir);
        await Promise.all([copying, pipeline(stream, unpacker)]);
        applied = await unpacker.result;
      } else {
        // already unpacked: still check the archive's bytes before trusting its config
        const hash = crypto.createHash('sha256');
        let tarSize = 0;
        await Promise.all([
          copying,
          (async () => {
            for await (const c of stream) {
              hash.update(c as Buffer);
              tarSize += (c as Buffer).length;
            }
          })(),
        ]);
        applied = { diffID: `sha256:${hash.digest('hex')}`, size: existing!.size, tarSize };
      }
      if (applied.diffID !== diffID) {
        throw invalidArgument(`invalid archive: layer ${id} has diffID ${applied.diffID}, the image config says ${diffID}`);
      }
      const blob = await writer.commit(expected).catch((err: Error) => {
        throw invalidArgument(`invalid archive: layer blob does not match its digest: ${err.message}`);
      });
      if (draft) {
        await draft.commit({ chainID, diffID, parent, size: applied.size, tarSize: applied.tarSize });
        committed = true;
      }
      const mediaType = compression === 'gzip' ? MediaType.ociLayerGzip : compression === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer;
      return { mediaType, digest: blob.digest, size: blob.size };
    } catch (err) {
      await writer.abort();
      throw err;
    } finally {
      if (draft && !committed) {
        await unpacker?.stop();
        await draft.discard().catch(() => {});
      }
    }
  }
}

/** Follows the archive's own symlinks (at most 16 hops), staying inside the archive. */
function resolveInArchive(p: string, links: Map<string, string>): string {
  let cur = cleanEntryPath(p);
  for (let hops = 0; hops < 16; hops++) {
    const parts = cur.split('/');
    let changed = false;
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      const target = links.get(prefix);
      if (target !== undefined) {
        cur = cleanEntryPath([target, ...parts.slice(i)].join('/'));
        changed = true;
        break;
      }
    }
    if (!changed) return cur;
  }
  throw invalidArgument(`invalid archive: too many symlinks resolving ${p}`);
}
