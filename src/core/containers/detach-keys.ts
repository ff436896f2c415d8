/**
 * The detach sequence ("ctrl-p,ctrl-q" by default): typed into an attached
 * stdin, it detaches the client and leaves the container running. Bytes that
 * start the sequence are held back until it completes or breaks.
 */
import { invalidArgument } from '../errdefs/index.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/** "ctrl-p,ctrl-q" -> [0x10, 0x11]; single characters stand for themselves. */
export function parseDetachKeys(spec: string): number[] {
  if (!spec) return [];
  return spec.split(',').map((key) => {
    if (key.length === 1) return key.charCodeAt(0);
    const m = /^ctrl-(.)$/.exec(key);
    if (!m) throw invalidArgument(`Invalid detach keys (${spec}) provided`);
    const c = m[1];
    if (c >= 'a' && c <= 'z') return c.charCodeAt(0) - 96;
    const special: Record<string, number> = { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 };
    if (c in special) return special[c];
    throw invalidArgument(`Invalid detach keys (${spec}) provided`);
  });
}

export class DetachFilter {
  private held: number[] = [];

  constructor(private readonly keys: number[]) {}

  /** Returns the bytes to pass on, and whether the sequence was typed. */
  push(chunk: Buffer): { out: Buffer; detach: boolean } {
    if (this.keys.length === 0) return { out: chunk, detach: false };
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === this.keys[this.held.length]) {
        this.held.push(byte);
        if (this.held.length === this.keys.length) return { out: Buffer.from(out), detach: true };
        continue;
      }
      out.push(...this.held);
      this.held = [];
      if (byte === this.keys[0]) this.held.push(byte);
      else out.push(byte);
    }
    return { out: Buffer.from(out), detach: false };
  }
}
