/**
 * Push: sends an image's blobs and manifest to a registry.
 *  - Blobs the registry has (HEAD) are skipped; blobs it may have in another
 *    repository of the same registry (the image was pulled from or pushed
 *    to it) are mounted; the rest are uploaded (POST, then one PUT with the
 *    body, or PATCH + PUT when the size is not known in advance).
 *  - Blobs kept from a pull are sent as they are, with the pulled manifest
 *    bytes, so the digest stays the same and pushing is a copy.
 *  - Uncompressed layers (import, load) are gzipped on the way out with
 *    ParallelGzip; the compressed blob is stored too and the image is
 *    re-pointed at the new manifest, so the next push is a copy as well.
 */
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import type { ContentStore, ContentWriter } from '../../core/content/store.js';
import type { Digest } from '../../core/images/digest.js';
import { type Reference, familiarName, parseReference, repositoryName } from '../../core/images/reference.js';
import { type Descriptor, type Manifest, MediaType } from '../../core/images/types.js';
import { BerthError, errorMessage, internal, notFound } from '../../core/errdefs/index.js';
import type { ImageService } from '../images/image-service.js';
import { ParallelGzip } from '../archive/parallel-gzip.js';
import type { Logger } from '../../util/log.js';
import type { AuthConfig } from './auth.js';
import { RegistryClient, registryError } from './registry-client.js';
import type { RegistryHosts } from './registry-hosts.js';
import { type ProgressSink, Semaphore, Throttle, detail, shortDigest, simple } from './progress.js';

export interface PushRequest {
  /** Repository, with a tag to push one tag; without, every tag of the repository. */
  ref: Reference;
  auth?: AuthConfig;
  progress: ProgressSink;
  signal?: AbortSignal;
}

export interface PushedTag {
  tag: string;
  digest: Digest;
  size: number;
}

/** What to send for one layer: a stored blob as is, or a stored tar to compress. */
type LayerSource = { kind: 'stored'; descriptor: Descriptor } | { kind: 'compress'; tar: Digest; tarSize: number };

interface Target {
  client: RegistryClient;
  repository: string;
  name: string;
}

const UNCOMPRESSED = new Set<string>([MediaType.ociLayer, 'application/vnd.oci.image.layer.nondistributable.v1.tar']);

export class Pusher {
  private readonly uploads: Semaphore;

  constructor(
    private readonly content: ContentStore,
    private readonly images: ImageService,
    private readonly hosts: RegistryHosts,
    private readonly log: Logger,
  ) {
    this.uploads = new Semaphore(Math.max(1, hosts.config.maxConcurrentUploads));
  }

  async push(req: PushRequest): Promise<PushedTag[]> {
    const { ref } = req;
    const repo = repositoryName(ref);
    const tags = ref.tag
      ? [ref.tag]
      : this.images.store
          .tags()
          .map(([r]) => parseReference(r))
          .filter((r) => repositoryName(r) === repo && r.tag)
          .map((r) => r.tag!)
          .sort();
    const missing = ref.tag ? !this.images.store.tagTarget(`${repo}:${ref.tag}`) : tags.length === 0;
    if (missing) throw notFound(`An image does not exist locally with the tag: ${familiarName(ref)}${ref.tag ? `:${ref.tag}` : ''}`);
    const endpoint = this.hosts.endpoint(ref.domain === 'docker.io' ? 'registry-1.docker.io' : ref.domain);
    const target: Target = { client: new RegistryClient(endpoint, req.auth), repository: ref.path, name: familiarName(ref) };
    req.progress({ status: `The push refers to repository [${repo}]` });
    const out: PushedTag[] = [];
    for (const tag of tags) out.push(await this.pushTag(target, ref, tag, req));
    return out;
  }

  private async pushTag(target: Target, ref: Reference, tag: string, req: PushRequest): Promise<PushedTag> {
    const repo = repositoryName(ref);
    const id = this.images.store.tagTarget(`${repo}:${tag}`);
    const img = id ? this.images.store.get(id) : undefined;
    if (!img) throw notFound(`An image does not exist locally with the tag: ${familiarName(ref)}:${tag}`);
    const storedBytes = await this.content.read(img.manifest);
    const manifest = JSON.parse(storedBytes.toString('utf8')) as Manifest;
    const config = await this.images.config(img.id);
    const diffIDs = config.rootfs.diff_ids;
    const sources: LayerSource[] = [];
    for (let i = 0; i < manifest.layers.length; i++) {
      const desc = manifest.layers[i];
      const stored = await this.content.has(desc.digest);
      if (stored && !UNCOMPRESSED.has(desc.mediaType)) {
        sources.push({ kind: 'stored', descriptor: desc });
      } else if (stored || (await this.content.has(diffIDs[i]))) {
        const tar = stored ? desc.digest : diffIDs[i];
        sources.push({ kind: 'compress', tar, tarSize: (await this.content.info(tar))!.size });
      } else {
        throw notFound(`cannot push ${familiarName(ref)}:${tag}: the blob of layer ${diffIDs[i]} is not stored locally`);
      }
    }
    const mountFrom = img.repoDigests
      .map((d) => parseReference(d))
      .filter((r) => r.domain === ref.domain && r.path !== ref.path)
      .map((r) => r.path);

    const ids = diffIDs.map((d) => shortDigest(d));
    for (const i of ids) req.progress(simple('Preparing', i));
    // compressed blobs and the new manifest stay out of GC's reach until the image points at them
    const unpins: (() => void)[] = [];
    try {
      return await this.pushTagLayers(target, ref, tag, req, { img, manifest, storedBytes, sources, ids, mountFrom, unpins });
    } finally {
      for (const unpin of unpins) unpin();
    }
  }

  private async pushTagLayers(
    target: Target,
    ref: Reference,
    tag: string,
    req: PushRequest,
    o: { img: { id: Digest }; manifest: Manifest; storedBytes: Buffer; sources: LayerSource[]; ids: string[]; mountFrom: string[]; unpins: (() => void)[] },
  ): Promise<PushedTag> {
    const { img, manifest, storedBytes, sources, ids, mountFrom, unpins } = o;
    const repo = repositoryName(ref);
    const pushed = await Promise.allSettled(sources.map((s, i) => this.pushLayer(target, s, ids[i], mountFrom, req, unpins)));
    const failed = pushed.find((p): p is PromiseRejectedResult => p.status === 'rejected');
    if (failed) throw failed.reason;
    const layers = pushed.map((p) => (p as PromiseFulfilledResult<Descriptor>).value);
    await this.pushBlob(target, manifest.config, () => this.content.readStream(manifest.config.digest), mountFrom, undefined, req);

    const recompressed = sources.some((s) => s.kind === 'compress');
    let manifestBytes = storedBytes;
    let mediaType = manifest.mediaType ?? MediaType.ociManifest;
    if (recompressed) {
      const next: Manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: manifest.config, layers };
      if (mediaType === MediaType.dockerManifest) {
        next.mediaType = MediaType.dockerManifest;
        next.config = { ...manifest.config, mediaType: MediaType.dockerConfig };
      }
      mediaType = next.mediaType!;
      manifestBytes = Buffer.from(JSON.stringify(next));
    }
    const res = await target.client.send({
      method: 'PUT',
      url: `/v2/${target.repository}/manifests/${tag}`,
      headers: { 'Content-Type': mediaType, 'Content-Length': String(manifestBytes.length) },
      body: manifestBytes,
      scopes: [`repository:${target.repository}:pull,push`],
      signal: req.signal,
    });
    if (res.statusCode !== 201 && res.statusCode !== 200) {
      throw await registryError(res, { action: 'push', repository: target.name, object: `manifest ${target.repository}:${tag}` });
    }
    res.resume();
    const stored = await this.content.put(manifestBytes);
    unpins.push(this.images.pin([stored.digest], []));
    const announced = res.headers['docker-content-digest'];
    if (typeof announced === 'string' && announced !== stored.digest) {
      this.log.warn('registry computed another manifest digest', { ours: stored.digest, theirs: announced });
    }
    await this.images.updateManifest(img.id, stored.digest, `${repo}@${stored.digest}`);
    req.progress({ status: `${tag}: digest: ${stored.digest} size: ${manifestBytes.length}` });
    req.progress({ progressDetail: {}, aux: { Tag: tag, Digest: stored.digest, Size: manifestBytes.length } });
    return { tag, digest: stored.digest, size: manifestBytes.length };
  }

  private async pushLayer(target: Target, source: LayerSource, id: string, mountFrom: string[], req: PushRequest, unpins: (() => void)[]): Promise<Descriptor> {
    if (this.uploads.busy) req.progress(simple('Waiting', id));
    const release = await this.uploads.acquire();
    try {
      if (source.kind === 'stored') {
        const d = source.descriptor;
        const how = await this.pushBlob(target, d, () => this.content.readStream(d.digest), mountFrom, { id, progress: req.progress }, req);
        req.progress(simple(how === 'exists' ? 'Layer already exists' : how === 'uploaded' ? 'Pushed' : `Mounted from ${how.from}`, id));
        return d;
      }
      const descriptor = await this.pushCompressed(target, source, id, req, unpins);
      req.progress(simple('Pushed', id));
      return descriptor;
    } finally {
      release();
    }
  }

  /** Uploads a blob of known digest unless the registry has it or can mount it. */
  private async pushBlob(
    target: Target,
    desc: Descriptor,
    open: () => Readable,
    mountFrom: string[],
    show: { id: string; progress: ProgressSink } | undefined,
    req: PushRequest,
  ): Promise<'exists' | 'uploaded' | { from: string }> {
    const scopes = [`repository:${target.repository}:pull,push`];
    const head = await target.client.send({ method: 'HEAD', url: `/v2/${target.repository}/blobs/${desc.digest}`, scopes, signal: req.signal });
    head.resume();
    if (head.statusCode === 200) return 'exists';
    let location: string | undefined;
    for (const from of mountFrom) {
      const res = await target.client.send({
        method: 'POST',
        url: `/v2/${target.repository}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`,
        headers: { 'Content-Length': '0' },
        scopes: [...scopes, `repository:${from}:pull`],
        signal: req.signal,
      });
      res.resume();
      if (res.statusCode === 201) return { from };
      if (res.statusCode === 202 && res.headers.location) {
        location = res.headers.location;
        break;
      }
    }
    location ??= await this.startUpload(target, req);
    const throttle = new Throttle(100);
    let sent = 0;
    const counted = (): Readable => {
      sent = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          sent += chunk.length;
          if (show && throttle.ready()) show.progress(detail('Pushing', show.id, sent, desc.size));
          cb(null, chunk);
        },
      });
      const src = open();
      src.on('error', (err) => counter.destroy(err));
      return src.pipe(counter);
    };
    const url = withQuery(this.absolute(target, location), 'digest', desc.digest);
    const res = await target.client.send({
      method: 'PUT',
      url,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(desc.size) },
      body: counted,
      scopes,
      signal: req.signal,
      idleTimeoutMs: 300_000,
    });
    if (res.statusCode !== 201) throw await registryError(res, { action: 'push', repository: target.name, object: `blob ${desc.digest}` });
    res.resume();
    if (show) show.progress(detail('Pushing', show.id, desc.size, desc.size));
    return 'uploaded';
  }

  /** POST /blobs/uploads/: the upload session's URL. */
  private async startUpload(target: Target, req: PushRequest): Promise<string> {
    const res = await target.client.send({
      method: 'POST',
      url: `/v2/${target.repository}/blobs/uploads/`,
      headers: { 'Content-Length': '0' },
      scopes: [`repository:${target.repository}:pull,push`],
      signal: req.signal,
    });
    res.resume();
    if (res.statusCode !== 202 || !res.headers.location) {
      throw await registryError(res, { action: 'push', repository: target.name, object: `upload to ${target.repository}` });
    }
    return res.headers.location;
  }

  /** Gzips a stored tar while uploading it (PATCH), storing the compressed blob too; then PUT with its digest. */
  private async pushCompressed(
    target: Target,
    source: { tar: Digest; tarSize: number },
    id: string,
    req: PushRequest,
    unpins: (() => void)[],
  ): Promise<Descriptor> {
    const scopes = [`repository:${target.repository}:pull,push`];
    const location = await this.startUpload(target, req);
    const writer = await this.content.writer();
    try {
      const throttle = new Throttle(100);
      let consumed = 0;
      const body = (): Readable => {
        const tar = this.content.readStream(source.tar);
        const counter = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            consumed += chunk.length;
            if (throttle.ready()) req.progress(detail('Pushing', id, consumed, source.tarSize));
            cb(null, chunk);
          },
        });
        const gzip = new ParallelGzip();
        const keep = storeWhileSending(writer);
        for (const s of [tar, counter, gzip]) s.on('error', (err) => keep.destroy(err));
        return tar.pipe(counter).pipe(gzip).pipe(keep);
      };
      const patch = await target.client.send({
        method: 'PATCH',
        url: this.absolute(target, location),
        headers: { 'Content-Type': 'application/octet-stream' },
        body,
        scopes,
        signal: req.signal,
        idleTimeoutMs: 300_000,
      });
      if (patch.statusCode !== 202) throw await registryError(patch, { action: 'push', repository: target.name, object: `layer upload` });
      patch.resume();
      const blob = await writer.commit();
      unpins.push(this.images.pin([blob.digest], []));
      const next = patch.headers.location ? this.absolute(target, patch.headers.location) : this.absolute(target, location);
      const put = await target.client.send({
        method: 'PUT',
        url: withQuery(next, 'digest', blob.digest),
        headers: { 'Content-Length': '0' },
        scopes,
        signal: req.signal,
      });
      if (put.statusCode !== 201) throw await registryError(put, { action: 'push', repository: target.name, object: `blob ${blob.digest}` });
      put.resume();
      req.progress(detail('Pushing', id, source.tarSize, source.tarSize));
      return { mediaType: MediaType.ociLayerGzip, digest: blob.digest, size: blob.size };
    } catch (err) {
      await writer.abort();
      if (err instanceof BerthError) throw err;
      throw internal(`pushing layer ${id}: ${errorMessage(err)}`, err);
    }
  }

  /** Upload Locations may be relative to the registry. */
  private absolute(target: Target, location: string): string {
    if (/^https?:\/\//.test(location)) return location;
    return location.startsWith('/') ? location : `/${location}`;
  }
}

function withQuery(url: string, key: string, value: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${key}=${encodeURIComponent(value)}`;
}

/** A pass-through that also writes every chunk to a content writer (awaited: its backpressure is ours). */
function storeWhileSending(writer: ContentWriter): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      writer.write(chunk).then(() => cb(null, chunk), cb);
    },
  });
}
