/**
 * The spec's grammar for repository names, tags and digests, checked before a
 * request touches storage (a name is also a path on disk: nothing else may
 * reach the filesystem).
 */
import type { Digest } from '../core/images/digest.js';
import { ociError } from './errors.js';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const SHA256_RE = /^sha256:[a-f0-9]{64}$/;
const ANY_DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Clients cap host + "/" + name at 255 characters; distribution caps the name itself. */
export const MAX_NAME_LENGTH = 255;

export function isRepositoryName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function checkRepositoryName(name: string): string {
  if (!isRepositoryName(name)) throw ociError('NAME_INVALID', `invalid repository name: ${JSON.stringify(name)}`, { name });
  return name;
}

export function isTag(ref: string): boolean {
  return TAG_RE.test(ref);
}

export function isDigestLike(ref: string): boolean {
  return ref.includes(':');
}

/** Parses a digest in a URL or query; only sha256 is stored (every client here uses it). */
export function parseDigestParam(value: string | null | undefined, what = 'digest'): Digest {
  if (value === null || value === undefined || value === '') throw ociError('DIGEST_INVALID', `missing ${what}`);
  if (SHA256_RE.test(value)) return value as Digest;
  if (ANY_DIGEST_RE.test(value) && !value.startsWith('sha256:')) {
    throw ociError('DIGEST_INVALID', `unsupported digest algorithm: ${JSON.stringify(value)} (only sha256)`, { digest: value });
  }
  throw ociError('DIGEST_INVALID', `invalid ${what}: ${JSON.stringify(value)}`, { digest: value });
}

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest };

/** A manifest reference is a tag or a digest, nothing else. */
export function parseReference(ref: string): Reference {
  if (isDigestLike(ref)) return { kind: 'digest', digest: parseDigestParam(ref) };
  if (!isTag(ref)) throw ociError('MANIFEST_INVALID', `invalid tag: ${JSON.stringify(ref)}`, { tag: ref });
  return { kind: 'tag', tag: ref };
}
