/**
 * Image references as Docker normalises them: "busybox" is
 * docker.io/library/busybox:latest; "localhost:5000/app@sha256:..." keeps
 * its registry. The grammar is distribution's reference grammar.
 */
import { invalidArgument } from '../errdefs/index.js';
import type { Digest } from './digest.js';

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
export const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const NAME_TOTAL_MAX = 255;

export interface Reference {
  /** Registry host, e.g. "docker.io" or "localhost:5000". */
  domain: string;
  /** Repository path within the registry, e.g. "library/busybox". */
  path: string;
  tag?: string;
  digest?: Digest;
}

function invalid(detail?: string): Error {
  return invalidArgument(detail ? `invalid reference format: ${detail}` : 'invalid reference format');
}

function validDomain(domain: string): boolean {
  // host[:port], host may be an IPv6 literal in brackets
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+)(?::(\d+))?$/.exec(domain);
  if (!m) return false;
  const host = m[1];
  if (host.startsWith('[')) return true;
  return host.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

/** Splits "name" into domain and remainder the way ParseNormalizedNamed does. */
function splitDockerDomain(name: string): { domain: string; remainder: string } {
  const i = name.indexOf('/');
  let domain: string;
  let remainder: string;
  if (i === -1 || !/[.:]/.test(name.slice(0, i)) && name.slice(0, i) !== 'localhost' && name.slice(0, i).toLowerCase() === name.slice(0, i)) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = name.slice(0, i);
    remainder = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/** Parses and normalises a reference; tag and digest are optional. */
export function parseReference(input: string): Reference {
  if (input.length === 0) throw invalid();
  if (/^[a-f0-9]{64}$/.test(input)) {
    throw invalidArgument(`invalid repository name (${input}), cannot specify 64-byte hexadecimal strings`);
  }
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    const d = rest.slice(at + 1);
    if (!DIGEST.test(d)) throw invalid();
    if (!/^sha256:[a-f0-9]{64}$/.test(d)) throw invalid(`unsupported digest ${d}`);
    digest = d as Digest;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid();
  }
  const { domain, remainder } = splitDockerDomain(rest);
  if (!validDomain(domain)) throw invalid();
  if (remainder.length === 0) throw invalid();
  if (remainder !== remainder.toLowerCase()) {
    throw invalid(`repository name (${remainder}) must be lowercase`);
  }
  for (const component of remainder.split('/')) {
    if (!PATH_COMPONENT.test(component)) throw invalid();
  }
  if (domain.length + 1 + remainder.length > NAME_TOTAL_MAX) throw invalid('repository name must not be more than 255 characters');
  return { domain, path: remainder, tag, digest };
}

/** Adds ":latest" when a reference has neither tag nor digest. */
export function withDefaultTag(ref: Reference): Reference {
  if (ref.tag === undefined && ref.digest === undefined) return { ...ref, tag: DEFAULT_TAG };
  return ref;
}

/** Fully qualified repository name: "docker.io/library/busybox". */
export function repositoryName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/** Fully qualified string: "docker.io/library/busybox:latest". */
export function referenceString(ref: Reference): string {
  let s = repositoryName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** The short form Docker shows users: "busybox", "foo/bar", "localhost:5000/app". */
export function familiarName(ref: Reference): string {
  if (ref.domain === DEFAULT_DOMAIN) {
    return ref.path.startsWith(OFFICIAL_REPO_PREFIX) ? ref.path.slice(OFFICIAL_REPO_PREFIX.length) : ref.path;
  }
  return repositoryName(ref);
}

export function familiarString(ref: Reference): string {
  let s = familiarName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** Parses a stored fully qualified reference string back (trusted input). */
export function parseStored(full: string): Reference {
  return parseReference(full);
}

/** True when the string is an acceptable tag. */
export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}
