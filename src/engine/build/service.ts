/**
 * BuildService: receives a build context, checks the Dockerfile, runs the
 * builder and tags the result; owns the build cache and the scratch area
 * (<data-root>/builder), which is swept at daemon start.
 */
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Digest } from '../../core/images/digest.js';
import { familiarString } from '../../core/images/reference.js';
import { shortId } from '../../util/ids.js';
import { MNT_DETACH, native } from '../runtime/native.js';
import { BuildCache } from './cache.js';
import { BuildContext } from './context.js';
import { type BuildOptions, type BuildOutput, Builder, type BuilderDeps, readDockerfile } from './builder.js';

export class BuildService {
  readonly cache: BuildCache;
  private readonly tmp: string;

  constructor(
    private readonly deps: Omit<BuilderDeps, 'cache' | 'workDir'>,
    dataRoot: string,
  ) {
    const dir = path.join(dataRoot, 'builder');
    this.cache = new BuildCache(dir);
    this.tmp = path.join(dir, 'tmp');
  }

  /** Loads the cache and clears what an interrupted build left (mounts, spools). */
  async init(): Promise<void> {
    await this.cache.load();
    await fsp.mkdir(this.tmp, { recursive: true, mode: 0o700 });
    for (const name of await fsp.readdir(this.tmp)) {
      const dir = path.join(this.tmp, name);
      for (const sub of await fsp.readdir(dir).catch(() => [] as string[])) {
        try {
          native().umount2(path.join(dir, sub), MNT_DETACH);
        } catch {
          // not a mount point
        }
      }
      await fsp.rm(dir, { recursive: true, force: true });
    }
    this.cache.forgetMissing((id) => this.deps.images.store.get(id) !== undefined);
  }

  async prepare(
    body: Readable,
    options: BuildOptions,
    signal: AbortSignal,
  ): Promise<{ run(out: BuildOutput): Promise<{ id: Digest }>; discard(): Promise<void> }> {
    const workDir = path.join(this.tmp, crypto.randomBytes(8).toString('hex'));
    const discard = async (): Promise<void> => {
      await context?.close();
      await fsp.rm(workDir, { recursive: true, force: true });
    };
    let context: BuildContext | undefined;
    const t0 = performance.now();
    const ms = (): number => Math.round(performance.now() - t0);
    try {
      context = await BuildContext.receive(body, workDir, signal);
      const received = ms();
      const dockerfile = await readDockerfile(context, options.dockerfile);
      const ctx = context;
      return {
        run: async (out) => {
          const builder = new Builder({ ...this.deps, cache: this.cache, workDir }, dockerfile, ctx, options, out, signal);
          const id = await builder.run();
          this.deps.log.debug('build finished', { image: shortId(id), receivedMs: received, builtMs: ms() });
          out.aux({ ID: id });
          out.stream(`Successfully built ${shortId(id)}\n`);
          for (const tag of options.tags) {
            await this.deps.images.tagReference(id, tag);
            out.stream(`Successfully tagged ${familiarString(tag)}\n`);
          }
          return { id };
        },
        discard,
      };
    } catch (err) {
      await discard();
      throw err;
    }
  }

  async prune(): Promise<{ CachesDeleted: string[]; SpaceReclaimed: number }> {
    const images = [...this.cache.images()];
    await this.cache.clear();
    return { CachesDeleted: images, SpaceReclaimed: 0 };
  }
}
