import crypto from 'node:crypto';

/** A 64-hex identifier, as Docker uses for containers and exec sessions. */
export function newId(): string {
  // Docker avoids all-digit IDs, which some tools misread as numbers.
  for (;;) {
    const id = crypto.randomBytes(32).toString('hex');
    if (!/^\d+$/.test(id.slice(0, 12))) return id;
  }
}

export function shortId(id: string): string {
  const hex = id.startsWith('sha256:') ? id.slice(7) : id;
  return hex.slice(0, 12);
}

export function isFullHexId(value: string): boolean {
  return /^[a-f0-9]{64}$/.test(value);
}
