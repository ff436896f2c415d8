/**
 * Manifest parsing for the registry: which media types are accepted, what a
 * manifest references (blobs, child manifests, its subject), and the
 * descriptor a referrer contributes to the referrers API. Pure functions, no
 * I/O; the bytes themselves are stored exactly as pushed.
 */
import type { Digest } from '../core/images/digest.js';
import { type Descriptor, MediaType } from '../core/images/types.js';
import { ociError } from './errors.js';

/** Manifest media types the registry stores (schema1 is long dead and refused). */
export const MANIFEST_MEDIA_TYPES = new Set<string>([
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
]);

const INDEX_TYPES = new Set<string>([MediaType.ociIndex, MediaType.dockerManifestList]);

export interface ParsedDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
}

export interface ParsedManifest {
  /** The Content-Type the manifest is stored and served with. */
  mediaType: string;
  isIndex: boolean;
  /** Blobs it needs: config and layers (layers with `urls` are foreign and not required). */
  blobs: ParsedDescriptor[];
  /** Child manifests of an index. */
  manifests: ParsedDescriptor[];
  subject?: ParsedDescriptor;
  artifactType?: string;
  configMediaType?: string;
  annotations?: Record<string, string>;
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function descriptor(value: unknown, where: string): ParsedDescriptor {
  if (!isObject(value)) throw ociError('MANIFEST_INVALID', `${where}: descriptor must be an object`);
  const { mediaType, digest, size, urls } = value;
  if (typeof mediaType !== 'string' || mediaType === '') throw ociError('MANIFEST_INVALID', `${where}: mediaType missing`);
  if (typeof digest !== 'string' || !DIGEST_RE.test(digest)) {
    if (typeof digest === 'string' && /^[a-z0-9+._-]+:[a-zA-Z0-9=_-]+$/.test(digest) && !digest.startsWith('sha256:')) {
      throw ociError('MANIFEST_INVALID', `${where}: unsupported digest algorithm ${JSON.stringify(digest)}`);
    }
    throw ociError('MANIFEST_INVALID', `${where}: invalid digest ${JSON.stringify(digest)}`);
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw ociError('MANIFEST_INVALID', `${where}: invalid size`);
  const out: ParsedDescriptor = { mediaType, digest: digest as Digest, size };
  if (Array.isArray(urls) && urls.length > 0 && urls.every((u) => typeof u === 'string')) out.urls = urls as string[];
  return out;
}

function stringMap(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw ociError('MANIFEST_INVALID', `${where}: annotations must map strings to strings`);
  }
  return value as Record<string, string>;
}

/** The media type part of a Content-Type header, lower-cased, without parameters. */
export function bareMediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const t = contentType.split(';')[0]!.trim().toLowerCase();
  return t === '' ? undefined : t;
}

/**
 * Parses and checks a pushed manifest. `contentType` is the request's
 * Content-Type; the stored type is that, or the body's `mediaType`.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw ociError('MANIFEST_INVALID', 'manifest is not valid JSON');
  }
  if (!isObject(doc)) throw ociError('MANIFEST_INVALID', 'manifest must be a JSON object');
  const bodyType = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  let headerType = bareMediaType(contentType);
  // Generic types say nothing about the manifest; fall back to the body.
  if (headerType === 'application/octet-stream' || headerType === 'application/json') headerType = undefined;
  if (headerType !== undefined && bodyType !== undefined && headerType !== bodyType) {
    throw ociError('MANIFEST_INVALID', `Content-Type ${headerType} does not match the manifest's mediaType ${bodyType}`);
  }
  const mediaType = headerType ?? bodyType ?? (Array.isArray(doc.manifests) ? MediaType.ociIndex : MediaType.ociManifest);
  if (!MANIFEST_MEDIA_TYPES.has(mediaType)) {
    throw ociError('MANIFEST_INVALID', `unsupported manifest media type ${JSON.stringify(mediaType)}`);
  }
  if (doc.schemaVersion !== 2) throw ociError('MANIFEST_INVALID', 'schemaVersion must be 2');

  const parsed: ParsedManifest = { mediaType, isIndex: INDEX_TYPES.has(mediaType), blobs: [], manifests: [] };
  if (parsed.isIndex) {
    if (!Array.isArray(doc.manifests)) throw ociError('MANIFEST_INVALID', 'index has no manifests array');
    parsed.manifests = doc.manifests.map((d, i) => descriptor(d, `manifests[${i}]`));
  } else {
    if (doc.config === undefined) throw ociError('MANIFEST_INVALID', 'manifest has no config');
    const config = descriptor(doc.config, 'config');
    parsed.configMediaType = config.mediaType;
    const layers = doc.layers ?? [];
    if (!Array.isArray(layers)) throw ociError('MANIFEST_INVALID', 'layers must be an array');
    parsed.blobs = [config, ...layers.map((d, i) => descriptor(d, `layers[${i}]`))];
  }
  if (doc.subject !== undefined && doc.subject !== null) parsed.subject = descriptor(doc.subject, 'subject');
  if (doc.artifactType !== undefined) {
    if (typeof doc.artifactType !== 'string') throw ociError('MANIFEST_INVALID', 'artifactType must be a string');
    if (doc.artifactType !== '') parsed.artifactType = doc.artifactType;
  }
  const annotations = stringMap(doc.annotations, 'annotations');
  if (annotations !== undefined) parsed.annotations = annotations;
  return parsed;
}

/** The descriptor a referrer appears with in the referrers API (spec: artifactType falls back to the config's media type). */
export function referrerDescriptor(parsed: ParsedManifest, digest: Digest, size: number): Descriptor {
  const out: Descriptor = { mediaType: parsed.mediaType, digest, size };
  const artifactType = parsed.artifactType ?? (parsed.isIndex ? undefined : parsed.configMediaType);
  if (artifactType !== undefined) out.artifactType = artifactType;
  if (parsed.annotations !== undefined && Object.keys(parsed.annotations).length > 0) out.annotations = parsed.annotations;
  return out;
}

/** Every digest a stored manifest keeps alive (blobs and children), for the garbage collector. */
export function referencedDigests(bytes: Buffer, mediaType: string): { blobs: Digest[]; manifests: Digest[]; subject?: Digest } {
  try {
    const parsed = parseManifest(bytes, mediaType);
    const out: { blobs: Digest[]; manifests: Digest[]; subject?: Digest } = {
      blobs: parsed.blobs.map((d) => d.digest),
      manifests: parsed.manifests.map((d) => d.digest),
    };
    if (parsed.subject !== undefined) out.subject = parsed.subject.digest;
    return out;
  } catch {
    return { blobs: [], manifests: [] };
  }
}
