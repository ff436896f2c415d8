/**
 * Container records on disk: <root>/containers/<id>/container.json, each
 * written atomically. The in-memory map is the index; names are unique.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { ContainerRecord } from '../../core/containers/types.js';
import { readJsonFile, removeTempFiles, writeJsonAtomic } from '../../util/atomic-file.js';
import { errnoCode } from '../../core/errdefs/index.js';
import type { Logger } from '../../util/log.js';

export class ContainerStore {
  private readonly byId = new Map<string, ContainerRecord>();

  constructor(
    readonly root: string,
    private readonly log: Logger,
  ) {}

  dir(id: string): string {
    return path.join(this.root, id);
  }

  async load(): Promise<ContainerRecord[]> {
    await fsp.mkdir(this.root, { recursive: true, mode: 0o710 });
    for (const id of await fsp.readdir(this.root)) {
      const dir = this.dir(id);
      if (id.startsWith('.')) {
        // a removal interrupted by a crash
        await fsp.rm(dir, { recursive: true, force: true });
        continue;
      }
      await removeTempFiles(dir);
      let rec: ContainerRecord | undefined;
      try {
        rec = await readJsonFile<ContainerRecord>(path.join(dir, 'container.json'));
      } catch (err) {
        this.log.warn('unreadable container record, skipping', { id, error: err as Error });
        continue;
      }
      if (!rec) {
        // created directory without a record: an interrupted create
        await fsp.rm(dir, { recursive: true, force: true });
        continue;
      }
      this.byId.set(rec.id, rec);
    }
    return [...this.byId.values()];
  }

  all(): ContainerRecord[] {
    return [...this.byId.values()];
  }

  get(id: string): ContainerRecord | undefined {
    return this.byId.get(id);
  }

  byName(name: string): ContainerRecord | undefined {
    const n = name.startsWith('/') ? name.slice(1) : name;
    for (const c of this.byId.values()) if (c.name === n) return c;
    return undefined;
  }

  async save(rec: ContainerRecord): Promise<void> {
    fs.mkdirSync(this.dir(rec.id), { recursive: true, mode: 0o710 }); // a directory entry: no round trip
    await writeJsonAtomic(path.join(this.dir(rec.id), 'container.json'), rec);
    this.byId.set(rec.id, rec);
  }

  /**
   * Forgets a record: the rename of its directory is the atomic point (a
   * crash after it leaves a .rm- directory that load() deletes); the files
   * themselves are deleted in the background, off the request's path.
   */
  async delete(id: string): Promise<void> {
    this.byId.delete(id);
    const dir = this.dir(id);
    const doomed = path.join(this.root, `.rm-${id}`);
    try {
      fs.renameSync(dir, doomed); // a directory entry: no thread-pool round trip
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    void fsp.rm(doomed, { recursive: true, force: true }).catch((err) => this.log.warn('removing container files failed', { id, error: err as Error }));
  }
}
