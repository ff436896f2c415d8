/**
 * Garbage collection while the registry serves: no read-only window (CNCF
 * distribution needs one, distribution#1609).
 *
 * Mark: per repository, the live manifests are the tagged ones, the recently
 * pushed or used ones (grace period), and everything reachable from them:
 * children of an index (distribution#3178 deleted those) and referrers
 * (signatures, SBOMs) of live manifests. Live blobs are what live manifests
 * reference, plus the manifests' own bytes.
 * Sweep: untagged manifests, then blob links, then blob files, each deleted
 * only through UsageTracker.deleteUnlessUsed, so anything a request touched
 * since the collection began (an upload finishing, a manifest push checking
 * its blobs, a pull) survives. A manifest kept that way keeps its blobs.
 * Uploads in flight live apart from blobs and are never collected until
 * abandoned (older than the purge age).
 */
import fsp from 'node:fs/promises';
import type { Digest } from '../core/images/digest.js';
import type { Logger } from '../util/log.js';
import { Mutex } from '../util/mutex.js';
import { referencedDigests } from './manifests.js';
import type { Registry } from './registry.js';
import { usageKey } from './storage/usage.js';

/** A temporary file this old belongs to no write in progress. */
const STALE_TEMP_MS = 3600_000;

export interface GcOptions {
  /** Content younger than this, or used this recently, is kept (ms). */
  graceMs: number;
  deleteUntagged: boolean;
  uploadPurgeAfterMs: number;
}

export interface GcReport {
  dryRun: boolean;
  startedAt: string;
  durationMs: number;
  repositories: number;
  manifestsDeleted: { repository: string; digest: Digest }[];
  blobLinksDeleted: number;
  blobsDeleted: Digest[];
  bytesFreed: number;
  /** Items that were garbage at mark time but were used during the run, so kept. */
  keptInUse: number;
  uploadsPurged: number;
}

interface RepoMark {
  name: string;
  liveManifests: Set<Digest>;
  deadManifests: Digest[];
  liveLinks: Set<Digest>;
  deadLinks: Digest[];
}

export class GarbageCollector {
  private readonly mutex = new Mutex();
  running = false;

  constructor(
    private readonly registry: Registry,
    private readonly options: GcOptions,
    private readonly log: Logger,
  ) {}

  /** One collection at a time; a second caller waits and then runs its own. */
  run(dryRun: boolean): Promise<GcReport> {
    return this.mutex.run(async () => {
      this.running = true;
      try {
        return await this.collect(dryRun);
      } finally {
        this.running = false;
      }
    });
  }

  private async collect(dryRun: boolean): Promise<GcReport> {
    const { registry } = this;
    const start = Date.now();
    const since = start - this.options.graceMs;
    registry.usage.hold(since);
    try {
      return await this.collectSince(dryRun, start, since);
    } finally {
      registry.usage.hold(undefined);
    }
  }

  private async collectSince(dryRun: boolean, start: number, since: number): Promise<GcReport> {
    const { registry } = this;
    const report: GcReport = {
      dryRun,
      startedAt: new Date(start).toISOString(),
      durationMs: 0,
      repositories: 0,
      manifestsDeleted: [],
      blobLinksDeleted: 0,
      blobsDeleted: [],
      bytesFreed: 0,
      keptInUse: 0,
      uploadsPurged: 0,
    };

    // ---- mark ----
    const marks: RepoMark[] = [];
    for (const name of await registry.repos.listAllRepositories()) marks.push(await this.markRepository(name, since));
    report.repositories = marks.length;

    // ---- sweep manifests ----
    for (const mark of marks) {
      for (const digest of mark.deadManifests) {
        const key = usageKey.revision(mark.name, digest);
        if (dryRun) {
          if (this.usedSince(key, since)) report.keptInUse++;
          else report.manifestsDeleted.push({ repository: mark.name, digest });
          continue;
        }
        const deleted = await registry.usage.deleteUnlessUsed(key, since, () => this.deleteManifest(mark.name, digest));
        if (deleted) report.manifestsDeleted.push({ repository: mark.name, digest });
        else {
          // Used during the run: it and everything it needs stay.
          report.keptInUse++;
          await this.keepManifest(mark, digest);
        }
      }
    }

    // ---- sweep blob links ----
    const liveBlobs = new Set<Digest>();
    for (const mark of marks) {
      for (const d of mark.liveManifests) liveBlobs.add(d);
      for (const d of mark.liveLinks) liveBlobs.add(d);
      for (const digest of mark.deadLinks) {
        if (mark.liveLinks.has(digest)) continue; // revived by a kept manifest
        const key = usageKey.link(mark.name, digest);
        const mtime = await this.mtime(registry.layout.blobLink(mark.name, digest));
        if (mtime === undefined) continue;
        if (mtime >= since) {
          liveBlobs.add(digest);
          continue;
        }
        if (dryRun) {
          if (this.usedSince(key, since)) liveBlobs.add(digest);
          else report.blobLinksDeleted++;
          continue;
        }
        const deleted = await registry.usage.deleteUnlessUsed(key, since, () => registry.repos.unlinkBlob(mark.name, digest));
        if (deleted) report.blobLinksDeleted++;
        else {
          report.keptInUse++;
          liveBlobs.add(digest);
        }
      }
    }

    // ---- sweep blobs ----
    for await (const { digest, info } of registry.blobs.list()) {
      if (liveBlobs.has(digest) || info.mtimeMs >= since) continue;
      const key = usageKey.blob(digest);
      if (dryRun) {
        if (this.usedSince(key, since)) report.keptInUse++;
        else {
          report.blobsDeleted.push(digest);
          report.bytesFreed += info.size;
        }
        continue;
      }
      const deleted = await registry.usage.deleteUnlessUsed(key, since, async () => {
        registry.manifestCache.delete(digest);
        await registry.blobs.delete(digest);
      });
      if (deleted) {
        report.blobsDeleted.push(digest);
        report.bytesFreed += info.size;
      } else report.keptInUse++;
    }

    // ---- leftovers of atomic writes cut short by a crash ----
    if (!dryRun) for (const mark of marks) await registry.repos.removeStaleTemp(mark.name, STALE_TEMP_MS);

    // ---- abandoned uploads ----
    for (const uuid of await registry.uploads.listStale(this.options.uploadPurgeAfterMs)) {
      if (!dryRun) await registry.uploads.purge(uuid);
      report.uploadsPurged++;
    }

    if (!dryRun) registry.usage.prune(since);
    report.durationMs = Date.now() - start;
    this.log.info(dryRun ? 'garbage collection (dry run) done' : 'garbage collection done', {
      repositories: report.repositories,
      manifestsDeleted: report.manifestsDeleted.length,
      blobLinksDeleted: report.blobLinksDeleted,
      blobsDeleted: report.blobsDeleted.length,
      bytesFreed: report.bytesFreed,
      keptInUse: report.keptInUse,
      uploadsPurged: report.uploadsPurged,
      durationMs: report.durationMs,
    });
    return report;
  }

  private async markRepository(name: string, since: number): Promise<RepoMark> {
    const { registry } = this;
    const revisions = await registry.repos.listRevisions(name);
    const revisionSet = new Set(revisions);
    const roots: Digest[] = [];
    for (const tag of await registry.repos.listTags(name)) {
      const d = await registry.repos.getTag(name, tag);
      if (d !== undefined) roots.push(d);
    }
    for (const d of revisions) {
      if (!this.options.deleteUntagged) roots.push(d);
      else if (this.usedSince(usageKey.revision(name, d), since)) roots.push(d);
      else {
        const mtime = await registry.repos.revisionMtime(name, d);
        if (mtime !== undefined && mtime >= since) roots.push(d);
      }
    }
    const mark: RepoMark = { name, liveManifests: new Set(), deadManifests: [], liveLinks: new Set(), deadLinks: [] };
    for (const root of roots) await this.markManifest(mark, root, revisionSet);
    mark.deadManifests = revisions.filter((d) => !mark.liveManifests.has(d));
    mark.deadLinks = (await registry.repos.listBlobLinks(name)).filter((d) => !mark.liveLinks.has(d));
    return mark;
  }

  /** Marks a manifest live with its blobs, its children and its referrers. */
  private async markManifest(mark: RepoMark, digest: Digest, revisions: Set<Digest>): Promise<void> {
    const stack: Digest[] = [digest];
    while (stack.length > 0) {
      const d = stack.pop()!;
      if (mark.liveManifests.has(d) || !revisions.has(d)) continue;
      mark.liveManifests.add(d);
      const mediaType = await this.registry.repos.getRevision(mark.name, d);
      const bytes = await this.registry.blobs.readAll(d);
      if (mediaType !== undefined && bytes !== undefined) {
        const refs = referencedDigests(bytes, mediaType);
        for (const b of refs.blobs) mark.liveLinks.add(b);
        stack.push(...refs.manifests);
      }
      for (const referrer of await this.registry.repos.listReferrers(mark.name, d)) stack.push(referrer.digest);
    }
  }

  private async keepManifest(mark: RepoMark, digest: Digest): Promise<void> {
    const revisions = new Set(await this.registry.repos.listRevisions(mark.name));
    mark.liveManifests.delete(digest);
    await this.markManifest(mark, digest, revisions);
  }

  private async deleteManifest(name: string, digest: Digest): Promise<void> {
    const { registry } = this;
    const mediaType = await registry.repos.getRevision(name, digest);
    const bytes = await registry.blobs.readAll(digest);
    if (mediaType !== undefined && bytes !== undefined) {
      const subject = referencedDigests(bytes, mediaType).subject;
      if (subject !== undefined) {
        await registry.repos.deleteReferrer(name, subject, digest);
        await registry.repos.removeEmptyReferrersDir(name, subject);
      }
    }
    await registry.repos.deleteRevision(name, digest);
  }

  private usedSince(key: string, since: number): boolean {
    const used = this.registry.usage.lastUsed(key);
    return used !== undefined && used >= since;
  }

  private async mtime(file: string): Promise<number | undefined> {
    try {
      return (await fsp.stat(file)).mtimeMs;
    } catch {
      return undefined;
    }
  }
}
