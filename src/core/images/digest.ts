/** Content digests (sha256 only, as every client here uses) and chain IDs. */
import crypto from 'node:crypto';
import { invalidArgument } from '../errdefs/index.js';

export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: string): value is Digest {
  return DIGEST_RE.test(value);
}

export function parseDigest(value: string): Digest {
  if (!isDigest(value)) throw invalidArgument(`invalid digest: ${JSON.stringify(value)}`);
  return value;
}

export function digestHex(d: Digest): string {
  return d.slice(7);
}

export function sha256Digest(data: string | Uint8Array): Digest {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

/**
 * chainID(L0) = diffID(L0); chainID(L0..n) = sha256(chainID(L0..n-1) + " " + diffID(n)).
 * Returns the chain ID of every prefix, so index i names the snapshot of layers 0..i.
 */
export function chainIDs(diffIDs: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const diffID of diffIDs) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? diffID : sha256Digest(`${prev} ${diffID}`));
  }
  return out;
}
