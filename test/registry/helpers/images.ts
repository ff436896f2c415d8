/**
 * Builds real images for tests: gzip'd tar layers with valid diff IDs, an
 * OCI config, a manifest, optionally an OCI image layout on disk (what
 * skopeo copies from), all from random bytes so every run is unique.
 */
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';

export type Digest = `sha256:${string}`;

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

export function sha256(data: Buffer | string): Digest {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

export interface Blob {
  digest: Digest;
  data: Buffer;
  mediaType: string;
}

export interface Image {
  config: Blob;
  layers: Blob[];
  manifest: Buffer;
  manifestDigest: Digest;
  mediaType: string;
}

async function tarOf(files: Record<string, Buffer>): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const [name, data] of Object.entries(files)) {
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name, size: data.length, mode: 0o644, mtime: new Date(0) }, data, (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface ImageOptions {
  layers?: number;
  layerBytes?: number;
  docker?: boolean;
  arch?: string;
}

/** A runnable-looking image: each layer holds one random file. */
export async function makeImage(options: ImageOptions = {}): Promise<Image> {
  const docker = options.docker ?? false;
  const layers: Blob[] = [];
  const diffIds: Digest[] = [];
  for (let i = 0; i < (options.layers ?? 2); i++) {
    const tar = await tarOf({ [`file-${i}-${crypto.randomBytes(4).toString('hex')}`]: crypto.randomBytes(options.layerBytes ?? 1024) });
    diffIds.push(sha256(tar));
    const gz = zlib.gzipSync(tar);
    layers.push({ digest: sha256(gz), data: gz, mediaType: docker ? DOCKER_LAYER : OCI_LAYER_GZIP });
  }
  const configJson = Buffer.from(
    JSON.stringify({
      architecture: options.arch ?? 'amd64',
      os: 'linux',
      created: new Date().toISOString(),
      config: { Cmd: ['/bin/true'], Labels: { test: crypto.randomBytes(6).toString('hex') } },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map(() => ({ created_by: 'test' })),
    }),
  );
  const config: Blob = { digest: sha256(configJson), data: configJson, mediaType: docker ? DOCKER_CONFIG : OCI_CONFIG };
  const mediaType = docker ? DOCKER_MANIFEST : OCI_MANIFEST;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.data.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.data.length })),
    }),
  );
  return { config, layers, manifest, manifestDigest: sha256(manifest), mediaType };
}

/** An index over images (OCI index or Docker manifest list). */
export function makeIndex(images: Image[], docker = false): { bytes: Buffer; digest: Digest; mediaType: string } {
  const mediaType = docker ? DOCKER_LIST : OCI_INDEX;
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      manifests: images.map((img, i) => ({
        mediaType: img.mediaType,
        digest: img.manifestDigest,
        size: img.manifest.length,
        platform: { architecture: i === 0 ? 'amd64' : `arm64`, os: 'linux', ...(i > 1 ? { variant: `v${i}` } : {}) },
      })),
    }),
  );
  return { bytes, digest: sha256(bytes), mediaType };
}

/** An artifact manifest (OCI 1.1 style) pointing at a subject. */
export function makeReferrer(subject: { digest: Digest; size: number; mediaType: string }, artifactType: string, blob: Blob, annotations?: Record<string, string>): { bytes: Buffer; digest: Digest } {
  const emptyConfig = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 };
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: emptyConfig,
    layers: [{ mediaType: blob.mediaType, digest: blob.digest, size: blob.data.length }],
    subject,
  };
  if (annotations !== undefined) doc.annotations = annotations;
  const bytes = Buffer.from(JSON.stringify(doc));
  return { bytes, digest: sha256(bytes) };
}

/** Writes an OCI image layout (oci-layout, index.json, blobs/sha256/...) with `image` under `tag`. */
export async function writeOciLayout(dir: string, image: Image, tag: string): Promise<void> {
  await fsp.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const blob of [image.config, ...image.layers, { digest: image.manifestDigest, data: image.manifest }]) {
    await fsp.writeFile(path.join(dir, 'blobs', 'sha256', blob.digest.slice(7)), blob.data);
  }
  await fsp.writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await fsp.writeFile(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
}
