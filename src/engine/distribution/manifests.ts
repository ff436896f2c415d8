/**
 * Manifests as registries serve them: which media types we accept, parsing
 * with validation (a registry's bytes are untrusted input), and platform
 * selection in OCI indexes and Docker manifest lists.
 */
import { type Digest, isDigest } from '../../core/images/digest.js';
import { type Descriptor, type Index, type Manifest, MediaType, type Platform, hostPlatform } from '../../core/images/types.js';
import { invalidArgument, notFound } from '../../core/errdefs/index.js';
import { type Reference, parseReference, withDefaultTag } from '../../core/images/reference.js';

export const MANIFEST_TYPES = [MediaType.ociManifest, MediaType.dockerManifest] as const;
export const INDEX_TYPES = [MediaType.ociIndex, MediaType.dockerManifestList] as const;
export const ACCEPT_MANIFESTS = [...MANIFEST_TYPES, ...INDEX_TYPES].join(', ');

/** Layer media types we can unpack (the compression itself is detected from the bytes). */
const LAYER_TYPES = new Set<string>([
  MediaType.ociLayer,
  MediaType.ociLayerGzip,
  MediaType.ociLayerZstd,
  MediaType.dockerLayerGzip,
  MediaType.dockerLayerForeign,
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);
const CONFIG_TYPES = new Set<string>([MediaType.ociConfig, MediaType.dockerConfig]);

export type Fetched = { kind: 'manifest'; manifest: Manifest; mediaType: string } | { kind: 'index'; index: Index; mediaType: string };

function checkDescriptor(d: unknown, what: string): Descriptor {
  const o = d as Partial<Descriptor> | null;
  if (!o || typeof o !== 'object' || typeof o.mediaType !== 'string' || typeof o.digest !== 'string' || !isDigest(o.digest) || typeof o.size !== 'number' || o.size < 0) {
    throw invalidArgument(`invalid manifest: bad ${what} descriptor`);
  }
  return o as Descriptor;
}

/** Parses manifest bytes; contentType is the registry's Content-Type header. */
export function parseManifest(bytes: Buffer, contentType: string | undefined): Fetched {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw invalidArgument('invalid manifest: not JSON');
  }
  const declared = typeof body.mediaType === 'string' ? body.mediaType : undefined;
  let mediaType = declared ?? (contentType ?? '').split(';')[0].trim();
  if (!mediaType || mediaType === 'application/json') mediaType = Array.isArray(body.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
  if (body.schemaVersion === 1 || mediaType.includes('distribution.manifest.v1')) {
    throw invalidArgument(`unsupported manifest media type ${mediaType}: Docker image manifest schema 1 is not supported`);
  }
  if ((INDEX_TYPES as readonly string[]).includes(mediaType)) {
    if (!Array.isArray(body.manifests)) throw invalidArgument('invalid manifest: index without manifests');
    const manifests = body.manifests.map((m, i) => checkDescriptor(m, `manifests[${i}]`));
    return { kind: 'index', index: { ...(body as unknown as Index), manifests }, mediaType };
  }
  if ((MANIFEST_TYPES as readonly string[]).includes(mediaType)) {
    const config = checkDescriptor(body.config, 'config');
    if (!Array.isArray(body.layers)) throw invalidArgument('invalid manifest: no layers');
    const layers = body.layers.map((l, i) => checkDescriptor(l, `layers[${i}]`));
    if (!CONFIG_TYPES.has(config.mediaType)) {
      throw invalidArgument(`unsupported media type ${config.mediaType} for the image config: not a container image`);
    }
    for (const l of layers) {
      if (!LAYER_TYPES.has(l.mediaType)) throw invalidArgument(`unsupported media type ${l.mediaType} for layer ${l.digest}`);
    }
    return { kind: 'manifest', manifest: { ...(body as unknown as Manifest), config, layers }, mediaType };
  }
  throw invalidArgument(`unsupported manifest media type ${mediaType}`);
}

/** "linux/amd64", "linux/arm64/v8", "amd64": a platform, os defaulting to linux. */
/** The reference a pull names: fromImage plus an optional tag (or digest) parameter. */
export function pullReference(fromImage: string, tag: string | undefined): Reference {
  let ref = parseReference(fromImage);
  if (tag) {
    if (ref.tag || ref.digest) throw invalidArgument(`invalid reference: both ${fromImage} and tag ${tag} given`);
    if (/^sha256:[a-f0-9]{64}$/.test(tag)) ref = { ...ref, digest: tag as Reference['digest'] };
    else ref = parseReference(`${fromImage}:${tag}`);
  }
  return withDefaultTag(ref);
}

export function parsePlatform(text: string): Platform {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length > 3 || parts.some((p) => p === '')) throw invalidArgument(`invalid platform ${JSON.stringify(text)}: expected os[/arch[/variant]]`);
  let [os, architecture, variant] = parts;
  if (parts.length === 1 && os !== 'linux' && os !== 'windows') {
    architecture = os;
    os = 'linux';
  }
  architecture = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm' }[architecture ?? ''] ?? architecture ?? hostPlatform().architecture;
  if (architecture === "arm64" && variant === "v8") variant = "";
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function platformString(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  if (want.os !== have.os || want.architecture !== have.architecture) return false;
  const haveVariant = have.architecture === 'arm64' && have.variant === 'v8' ? undefined : have.variant;
  return !want.variant || want.variant === haveVariant;
}

/** The manifest of an index for a platform (attestation manifests never match). */
export function selectPlatform(index: Index, want: Platform, name: string): Descriptor {
  const candidates = index.manifests.filter(
    (m) => (MANIFEST_TYPES as readonly string[]).includes(m.mediaType) && m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest',
  );
  const exact = candidates.find((m) => platformMatches(want, m.platform));
  if (exact) return exact;
  // a requested variant-less arm matches the first arm variant, as containerd's matcher does
  const loose = !want.variant ? candidates.find((m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture) : undefined;
  if (loose) return loose;
  throw notFound(`no matching manifest for ${platformString(want)} in the manifest list entries of ${name}`);
}

export function isDigestString(s: string): s is Digest {
  return isDigest(s);
}
