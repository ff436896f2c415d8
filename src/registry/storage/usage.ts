/**
 * Records when content was last used by a request, so that garbage collection
 * can run while the registry serves (no read-only window).
 *
 * The rule that makes it safe: a request that is about to rely on a blob, a
 * blob link or a manifest revision calls `use(key)` *before* it checks the
 * content exists; the collector deletes an item only through `deleteUnlessUsed`,
 * which checks the record and starts the deletion in the same tick. Node runs
 * one tick at a time, so either the request's use is seen and the item kept,
 * or the deletion started first and the request waits for it to finish and
 * then sees the item gone (a 404 the client recovers from by uploading).
 */
import type { Digest } from '../../core/images/digest.js';

export const usageKey = {
  blob: (digest: Digest): string => digest,
  link: (repo: string, digest: Digest): string => `l\0${repo}\0${digest}`,
  revision: (repo: string, digest: Digest): string => `m\0${repo}\0${digest}`,
};

/** Above this many records, old ones are dropped as new ones arrive (bounds memory without a collector). */
const PRUNE_THRESHOLD = 100_000;

export class UsageTracker {
  private readonly lastUse = new Map<string, number>();
  private readonly deleting = new Map<string, Promise<unknown>>();
  private nextPruneAt = PRUNE_THRESHOLD;
  /** The `since` of a collection in progress: records at or after it must stay. */
  private heldSince: number | undefined;

  /** @param retentionMs how long a use matters (the collector's grace period). */
  constructor(private readonly retentionMs = 3600_000) {}

  /** Marks a key used now; resolves once any deletion of it that already started has finished. */
  use(key: string): Promise<void> | undefined {
    this.lastUse.set(key, Date.now());
    if (this.lastUse.size > this.nextPruneAt) {
      const cutoff = Math.min(Date.now() - this.retentionMs, this.heldSince ?? Infinity);
      this.prune(cutoff);
      this.nextPruneAt = Math.max(PRUNE_THRESHOLD, this.lastUse.size * 2);
    }
    const pending = this.deleting.get(key);
    return pending === undefined ? undefined : pending.then(() => undefined, () => undefined);
  }

  /** Uses several keys and waits for any deletion in progress among them. */
  async useAll(keys: Iterable<string>): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const key of keys) {
      const w = this.use(key);
      if (w !== undefined) waits.push(w);
    }
    if (waits.length > 0) await Promise.all(waits);
  }

  lastUsed(key: string): number | undefined {
    return this.lastUse.get(key);
  }

  /**
   * Deletes an item unless it was used at or after `since`. The check and the
   * start of the deletion happen in one tick (see the module comment).
   */
  async deleteUnlessUsed(key: string, since: number, remove: () => Promise<unknown>): Promise<boolean> {
    const used = this.lastUse.get(key);
    if (used !== undefined && used >= since) return false;
    if (this.deleting.has(key)) return false;
    const running = remove();
    this.deleting.set(key, running);
    try {
      await running;
    } finally {
      this.deleting.delete(key);
    }
    return true;
  }

  /** A collection starts (its `since`) or ends (undefined): records it may need are kept meanwhile. */
  hold(since: number | undefined): void {
    this.heldSince = since;
  }

  /** Forgets records older than a time (called by the collector). */
  prune(olderThan: number): void {
    for (const [key, at] of this.lastUse) if (at < olderThan) this.lastUse.delete(key);
  }

  get size(): number {
    return this.lastUse.size;
  }
}
