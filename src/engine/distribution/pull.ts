/**
 * Pull: resolves a reference on its registry (mirrors first for docker.io),
 * picks the platform's manifest from an index, then downloads the layers
 * that are not here yet, concurrently (--max-concurrent-downloads), each in
 * one pass: the registry's bytes go to the content store (verified against
 * the layer digest as they stream) and through the decompressor into the
 * unpack worker (verified against the diffID), with Range resume when a
 * connection drops. Layers are committed in chain order; the image is
 * recorded last, with the registry's config and manifest bytes, so a crash
 * at any point leaves no half image (ingest/ and drafts/ are swept at start,
 * unrecorded layers and blobs are garbage).
 *
 * Two pulls that need the same layer share one download (LayerJobs).
 */
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContentStore } from '../../core/content/store.js';
import type { Snapshotter } from '../../core/snapshots/snapshotter.js';
import { type Digest, chainIDs, sha256Digest } from '../../core/images/digest.js';
import { type Reference, familiarName, familiarString, repositoryName } from '../../core/images/reference.js';
import { type Descriptor, type ImageConfig, type Manifest, type Platform, hostPlatform } from '../../core/images/types.js';
import { BerthError, errorMessage, invalidArgument, isKind, notFound } from '../../core/errdefs/index.js';
import type { ImageService } from '../images/image-service.js';
import { LayerUnpacker } from '../archive/apply-layer.js';
import { decompressed } from '../archive/compression.js';
import type { Logger } from '../../util/log.js';
import type { AuthConfig } from './auth.js';
import { RegistryClient, readLimited, registryError } from './registry-client.js';
import type { RegistryHosts } from './registry-hosts.js';
import { ACCEPT_MANIFESTS, type Fetched, parseManifest, platformMatches, platformString, selectPlatform } from './manifests.js';
import { type ProgressSink, Semaphore, Throttle, detail, shortDigest, simple } from './progress.js';
import { drainedOrClosed } from '../../util/streams.js';

const MAX_MANIFEST = 4 << 20;
const MAX_CONFIG = 32 << 20;
const MAX_RESUMES = 5;

export interface PullRequest {
  ref: Reference;
  platform?: Platform;
  auth?: AuthConfig;
  progress: ProgressSink;
  /**
   * Stops trying further endpoints. Layer downloads do not follow it: they
   * may be shared with other pulls, and a finished layer is useful anyway.
   */
  signal?: AbortSignal;
}

export interface PullResult {
  id: Digest;
  /** The digest the reference resolved to (an index's, when it was one). */
  digest: Digest;
  upToDate: boolean;
}

/** Where a repository lives for this pull: a client and the path on that registry. */
interface Source {
  client: RegistryClient;
  repository: string;
  /** The reference as the user named it, for messages. */
  name: string;
}

interface LayerJob {
  promise: Promise<void>;
  listeners: Set<ProgressSink>;
}

export class Puller {
  private readonly downloads: Semaphore;
  /** In-flight layer downloads by chain ID, shared between pulls. */
  private readonly jobs = new Map<Digest, LayerJob>();

  constructor(
    private readonly content: ContentStore,
    private readonly snapshots: Snapshotter,
    private readonly images: ImageService,
    private readonly hosts: RegistryHosts,
    private readonly log: Logger,
  ) {
    this.downloads = new Semaphore(Math.max(1, hosts.config.maxConcurrentDownloads));
  }

  async pull(req: PullRequest): Promise<PullResult> {
    const { ref } = req;
    const endpoints = this.hosts.endpoints(ref.domain);
    let lastError: unknown;
    for (const endpoint of endpoints) {
      const source: Source = { client: new RegistryClient(endpoint, req.auth), repository: ref.path, name: familiarName(ref) };
      try {
        return await this.pullFrom(source, req);
      } catch (err) {
        lastError = err;
        // a mirror that fails (down, or lacks the image) falls through to the next endpoint
        if (!endpoint.mirror || req.signal?.aborted) throw err;
        this.log.info('mirror failed, trying the next endpoint', { mirror: endpoint.host, error: errorMessage(err) });
      }
    }
    throw lastError;
  }

  private async pullFrom(src: Source, req: PullRequest): Promise<PullResult> {
    const { ref } = req;
    const want = req.platform ?? hostPlatform();
    const reference = ref.digest ?? ref.tag ?? 'latest';
    const top = await this.fetchManifest(src, reference, ref.digest);
    let manifestBytes = top.bytes;
    let manifestDigest = top.digest;
    let fetched = top.fetched;
    if (fetched.kind === 'index') {
      const chosen = selectPlatform(fetched.index, want, familiarString(ref));
      const m = await this.fetchManifest(src, chosen.digest, chosen.digest);
      if (m.fetched.kind !== 'manifest') throw invalidArgument(`manifest ${chosen.digest} of the index is itself an index`);
      manifestBytes = m.bytes;
      manifestDigest = m.digest;
      fetched = m.fetched;
    }
    const manifest = fetched.manifest;
    const configBytes = await this.fetchSmallBlob(src, manifest.config, MAX_CONFIG);
    const config = parseConfig(configBytes);
    if (config.rootfs.diff_ids.length !== manifest.layers.length) {
      throw invalidArgument(`invalid image: the manifest lists ${manifest.layers.length} layers but the config ${config.rootfs.diff_ids.length} diff IDs`);
    }
    if (req.platform && !platformMatches(req.platform, { os: config.os, architecture: config.architecture, variant: config.variant })) {
      throw notFound(
        `image with reference ${familiarString(ref)} was found but does not match the specified platform: wanted ${platformString(req.platform)}, actual: ${platformString({ os: config.os, architecture: config.architecture, variant: config.variant })}`,
      );
    }
    req.progress({ status: `Pulling from ${src.repository}`, id: reference });

    const configDigest = manifest.config.digest;
    const chains = chainIDs(config.rootfs.diff_ids);
    const unpin = this.images.pin([configDigest, manifestDigest, ...manifest.layers.map((l) => l.digest)], chains);
    try {
      const existing = this.images.store.get(configDigest);
      await this.fetchLayers(src, manifest, config.rootfs.diff_ids, chains, req);
      await this.content.put(configBytes, configDigest);
      await this.content.put(manifestBytes, manifestDigest);
      const repoDigest = `${repositoryName(ref)}@${top.digest}`;
      let complete = true;
      for (const l of manifest.layers) complete &&= await this.content.has(l.digest);
      const { record, existed } = await this.images.registerImage(configDigest, manifestDigest, repoDigest, { preferManifest: complete });
      let retagged = false;
      if (ref.tag !== undefined && !ref.digest) {
        retagged = this.images.store.tagTarget(`${repositoryName(ref)}:${ref.tag}`) !== record.id;
        if (retagged) await this.images.tagReference(record.id, ref);
      }
      req.progress({ status: `Digest: ${top.digest}` });
      return { id: record.id, digest: top.digest, upToDate: existed && existing !== undefined && !retagged };
    } finally {
      unpin();
    }
  }

  /** GET a manifest by tag or digest; verifies the bytes against the digest asked for (or announced). */
  private async fetchManifest(src: Source, reference: string, expected?: Digest): Promise<{ bytes: Buffer; digest: Digest; fetched: Fetched }> {
    const res = await src.client.send({
      method: 'GET',
      url: `/v2/${src.repository}/manifests/${reference}`,
      headers: { Accept: ACCEPT_MANIFESTS },
      scopes: [`repository:${src.repository}:pull`],
    });
    if (res.statusCode !== 200) {
      const status = res.statusCode;
      const err = await registryError(res, {
        action: 'pull',
        repository: src.name,
        object: `manifest for ${src.client.host}/${src.repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`,
      });
      if (status === 404 && isKind(err, 'NotFound')) {
        throw notFound(`manifest for ${src.name}${reference.startsWith('sha256:') ? '@' : ':'}${reference} not found: manifest unknown: manifest unknown`);
      }
      throw err;
    }
    const bytes = await readLimited(res, MAX_MANIFEST);
    const digest = sha256Digest(bytes);
    if (expected && digest !== expected) {
      throw invalidArgument(`manifest verification failed for digest ${expected}: the registry sent content with digest ${digest}`);
    }
    const announced = res.headers['docker-content-digest'];
    if (!expected && typeof announced === 'string' && announced.startsWith('sha256:') && announced !== digest) {
      throw invalidArgument(`manifest verification failed for digest ${announced}: the registry sent content with digest ${digest}`);
    }
    return { bytes, digest, fetched: parseManifest(bytes, res.headers['content-type']) };
  }

  private async fetchSmallBlob(src: Source, desc: Descriptor, limit: number): Promise<Buffer> {
    if (desc.size > limit) throw invalidArgument(`blob ${desc.digest} is too large (${desc.size} bytes)`);
    const local = await this.content.info(desc.digest);
    if (local) return this.content.read(desc.digest);
    const chunks: Buffer[] = [];
    for await (const c of this.blobChunks(src, desc, {})) chunks.push(c);
    const bytes = Buffer.concat(chunks);
    if (sha256Digest(bytes) !== desc.digest) throw invalidArgument(`blob verification failed for digest ${desc.digest}`);
    return bytes;
  }

  /**
   * The bytes of a blob, resuming with Range after a dropped connection.
   * A registry that ignores Range (200 instead of 206) resends from the
   * start: the bytes we already have are skipped.
   */
  private async *blobChunks(src: Source, desc: Descriptor, opts: { signal?: AbortSignal }): AsyncGenerator<Buffer> {
    let received = 0;
    let failures = 0;
    for (;;) {
      let url = `/v2/${src.repository}/blobs/${desc.digest}`;
      let res = await src.client.send({
        method: 'GET',
        url,
        headers: received > 0 ? { Range: `bytes=${received}-` } : {},
        scopes: [`repository:${src.repository}:pull`],
        signal: opts.signal,
      });
      for (let hops = 0; res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && res.headers.location && hops < 5; hops++) {
        res.resume();
        url = new URL(res.headers.location, `http://${src.client.host}${url}`).toString();
        res = await src.client.send({ method: 'GET', url, headers: received > 0 ? { Range: `bytes=${received}-` } : {}, scopes: [], signal: opts.signal });
      }
      let skip = 0;
      if (res.statusCode === 206) {
        const start = /bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
        if (!start || Number(start[1]) !== received) {
          res.resume();
          throw invalidArgument(`registry answered a Range request for ${desc.digest} with the wrong range`);
        }
      } else if (res.statusCode === 200) {
        skip = received;
      } else {
        throw await registryError(res, { action: 'pull', repository: src.name, object: `blob ${desc.digest}` });
      }
      try {
        for await (const raw of res) {
          let chunk = raw as Buffer;
          if (skip > 0) {
            if (chunk.length <= skip) {
              skip -= chunk.length;
              continue;
            }
            chunk = chunk.subarray(skip);
            skip = 0;
          }
          received += chunk.length;
          if (received > desc.size) throw invalidArgument(`blob ${desc.digest} is larger than the ${desc.size} bytes its descriptor says`);
          yield chunk;
        }
        if (received === desc.size) return;
        throw new Error(`connection closed after ${received} of ${desc.size} bytes`);
      } catch (err) {
        res.destroy();
        if (err instanceof BerthError || opts.signal?.aborted || ++failures > MAX_RESUMES) throw err;
        this.log.info('blob download interrupted, resuming', { digest: desc.digest, received, error: errorMessage(err) });
        await new Promise((r) => setTimeout(r, 100 * failures));
      }
    }
  }

  private async fetchLayers(src: Source, manifest: Manifest, diffIDs: Digest[], chains: Digest[], req: PullRequest): Promise<void> {
    const waits: Promise<void>[] = [];
    let parentReady: Promise<void> = Promise.resolve();
    for (let i = 0; i < manifest.layers.length; i++) {
      const desc = manifest.layers[i];
      const chainID = chains[i];
      const parent = i > 0 ? chains[i - 1] : null;
      const id = shortDigest(desc.digest);
      let job = this.jobs.get(chainID);
      if (!job && (await this.isPresent(chainID, desc, diffIDs[i]))) {
        req.progress(simple('Already exists', id));
        continue;
      }
      if (!job) {
        req.progress(simple('Pulling fs layer', id));
        const listeners = new Set<ProgressSink>([req.progress]);
        const emit: ProgressSink = (m) => {
          for (const l of listeners) l(m);
        };
        const promise = this.downloadLayer(src, desc, diffIDs[i], chainID, parent, parentReady, emit, req.signal).finally(() => this.jobs.delete(chainID));
        job = { promise, listeners };
        this.jobs.set(chainID, job);
      } else {
        // another pull is already fetching this layer: follow its progress
        req.progress(simple('Pulling fs layer', id));
        job.listeners.add(req.progress);
        const j = job;
        void j.promise.finally(() => j.listeners.delete(req.progress)).catch(() => {});
      }
      parentReady = job.promise;
      waits.push(job.promise);
    }
    // every layer settles before we report (no download left running unobserved)
    const results = await Promise.allSettled(waits);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** A layer is here when it is unpacked and a blob we can push it from is stored. */
  private async isPresent(chainID: Digest, desc: Descriptor, diffID: Digest): Promise<boolean> {
    if (!(await this.snapshots.layer(chainID))) return false;
    return (await this.content.has(desc.digest)) || (await this.content.has(diffID));
  }

  private async downloadLayer(
    src: Source,
    desc: Descriptor,
    diffID: Digest,
    chainID: Digest,
    parent: Digest | null,
    parentReady: Promise<void>,
    emit: ProgressSink,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const id = shortDigest(desc.digest);
    if (this.downloads.busy) emit(simple('Waiting', id));
    const release = await this.downloads.acquire();
    const started = performance.now();
    const writer = await this.content.writer();
    const draft = await this.snapshots.draft();
    let committed = false;
    let unpacker: LayerUnpacker | undefined;
    try {
      const compressedStream = new PassThrough({ highWaterMark: 1 << 20 });
      const throttle = new Throttle(100);
      let received = 0;
      const download = (async () => {
        try {
          // the blob goes to disk in 1 MiB writes (a thread-pool round trip each), not one per socket read
          let pending: Buffer[] = [];
          let pendingBytes = 0;
          // a failed unpack destroys the stream: stop downloading instead of waiting for a drain that never comes
          const throwIfStopped = (): void => {
            if (compressedStream.destroyed) throw compressedStream.errored ?? new Error('layer unpacking stopped');
          };
          const flush = async (): Promise<void> => {
            if (pendingBytes === 0) return;
            const data = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
            pending = [];
            pendingBytes = 0;
            await writer.write(data);
          };
          for await (const chunk of this.blobChunks(src, desc, { signal })) {
            pending.push(chunk);
            pendingBytes += chunk.length;
            if (pendingBytes >= 1 << 20) await flush();
            received += chunk.length;
            if (throttle.ready()) emit(detail('Downloading', id, received, desc.size));
            throwIfStopped();
            if (!compressedStream.write(chunk) && !compressedStream.destroyed) await drainedOrClosed(compressedStream);
            throwIfStopped();
          }
          await flush();
          compressedStream.end();
        } catch (err) {
          compressedStream.destroy(err as Error);
          throw err;
        }
      })();
      const unpack = (async () => {
        const { stream } = await decompressed(compressedStream);
        unpacker = new LayerUnpacker(draft.dir);
        await pipeline(stream as Readable, unpacker);
        return unpacker.result;
      })();
      unpack.catch((err: Error) => compressedStream.destroy(err));
      // the download's own error says more than the unpacker's "premature close"; but when the
      // unpacking failed first (bad gzip, hostile tar), the download stopped because of it
      const [downloaded, unpacked] = await Promise.allSettled([download, unpack]);
      if (downloaded.status === 'rejected') throw unpacked.status === 'rejected' && compressedStream.errored === unpacked.reason ? unpacked.reason : downloaded.reason;
      const streamed = performance.now();
      emit(detail('Downloading', id, received, desc.size));
      emit(simple('Verifying Checksum', id));
      try {
        await writer.commit(desc.digest, desc.size);
      } catch (err) {
        throw invalidArgument(`filesystem layer verification failed for digest ${desc.digest}: ${errorMessage(err)}`);
      }
      emit(simple('Download complete', id));
      if (unpacked.status === 'rejected') throw unpacked.reason;
      const applied = unpacked.value;
      emit(detail('Extracting', id, desc.size, desc.size));
      if (applied.diffID !== diffID) {
        throw invalidArgument(`layer ${desc.digest} does not match the image config: its content has diffID ${applied.diffID}, the config says ${diffID}`);
      }
      release();
      await parentReady.catch(() => {
        throw new Error(`an earlier layer failed`);
      });
      const verified = performance.now();
      await draft.commit({ chainID, diffID, parent, size: applied.size, tarSize: applied.tarSize });
      committed = true;
      const ms = (a: number, b: number): number => Math.round(b - a);
      this.log.debug('layer pulled', { digest: desc.digest, bytes: desc.size, streamMs: ms(started, streamed), verifyMs: ms(streamed, verified), commitMs: ms(verified, performance.now()) });
      emit(simple('Pull complete', id));
    } catch (err) {
      await writer.abort();
      throw err;
    } finally {
      release();
      if (!committed) {
        await unpacker?.stop();
        await draft.discard().catch(() => {});
      }
    }
  }
}


function parseConfig(bytes: Buffer): ImageConfig {
  let cfg: ImageConfig;
  try {
    cfg = JSON.parse(bytes.toString('utf8')) as ImageConfig;
  } catch {
    throw invalidArgument('invalid image config: not JSON');
  }
  if (!cfg || typeof cfg !== 'object' || !cfg.rootfs || !Array.isArray(cfg.rootfs.diff_ids) || !cfg.rootfs.diff_ids.every((d) => /^sha256:[a-f0-9]{64}$/.test(d))) {
    throw invalidArgument('invalid image config: no valid rootfs.diff_ids');
  }
  return cfg;
}
