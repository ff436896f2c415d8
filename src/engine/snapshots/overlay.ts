/**
 * Overlay snapshotter.
 *   <root>/layers/<chainHex>/fs         unpacked layer (overlay whiteout format)
 *   <root>/layers/<chainHex>/meta.json  LayerInfo
 *   <root>/l/<16 hex>                   short symlink to a layer's fs, so that
 *                                       many lowerdirs fit in one mount option page
 *   <root>/drafts/<random>/fs           layers being unpacked
 *   <root>/active/<key>/{upper,work}    writable layers of containers
 * drafts/ carries ext4's "top directory" flag: the tree of every
 * new layer is placed away from recently deleted ones (unpacking into a
 * block group full of just-freed inodes is ~10x slower on ext4 without a journal).
 * A layer becomes visible by renaming its finished draft into layers/, so a
 * crash mid-unpack leaves only a draft, which init() deletes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Digest } from '../../core/images/digest.js';
import { digestHex } from '../../core/images/digest.js';
import type { LayerDraft, LayerInfo, OverlayMount, Snapshotter } from '../../core/snapshots/snapshotter.js';
import { errnoCode, notFound } from '../../core/errdefs/index.js';
import { readJsonFile, syncDir, writeFileAtomic } from '../../util/atomic-file.js';
import { native } from '../runtime/native.js';

export class OverlaySnapshotter implements Snapshotter {
  private readonly layersDir: string;
  private readonly linksDir: string;
  private readonly draftsDir: string;
  private readonly activeDir: string;
  private readonly emptyDir: string;
  private readonly cache = new Map<Digest, LayerInfo>();
  /** Active snapshots' parents (fixed for a key's life), as their parent files say. */
  private readonly parents = new Map<string, Digest | null>();
  /** Counts removals: a parent read that a removal overtook is not cached. */
  private removals = 0;

  constructor(root: string) {
    this.layersDir = path.join(root, 'layers');
    this.linksDir = path.join(root, 'l');
    this.draftsDir = path.join(root, 'drafts');
    this.activeDir = path.join(root, 'active');
    this.emptyDir = path.join(root, 'empty');
  }

  async init(): Promise<void> {
    await fsp.rm(this.draftsDir, { recursive: true, force: true });
    for (const d of [this.layersDir, this.linksDir, this.draftsDir, this.activeDir, this.emptyDir]) {
      await fsp.mkdir(d, { recursive: true, mode: 0o700 });
    }
    // Each draft starts in a block group of ext4's choosing rather than next to the last one,
    // which may have just been deleted (see setTopdir in the addon). Not active/: writable
    // layers are small, and an A/B of run --rm was no faster with it.
    native().setTopdir(this.draftsDir);
    // A crash between commit and link creation leaves a layer without its link.
    for (const name of await fsp.readdir(this.layersDir)) {
      if (!(await fsp.stat(path.join(this.layersDir, name, 'meta.json')).catch(() => undefined))) {
        await fsp.rm(path.join(this.layersDir, name), { recursive: true, force: true });
        continue;
      }
      await this.ensureLink(name);
    }
  }

  private layerPath(chainID: Digest): string {
    return path.join(this.layersDir, digestHex(chainID));
  }

  private async ensureLink(hex: string): Promise<string> {
    const link = path.join(this.linksDir, hex.slice(0, 16));
    const target = path.join('..', 'layers', hex, 'fs');
    try {
      await fsp.symlink(target, link);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      const existing = await fsp.readlink(link);
      if (existing !== target) throw new Error(`layer link collision for ${hex}`);
    }
    return link;
  }

  async layer(chainID: Digest): Promise<LayerInfo | undefined> {
    const cached = this.cache.get(chainID);
    if (cached) return cached;
    const info = await readJsonFile<LayerInfo>(path.join(this.layerPath(chainID), 'meta.json'));
    if (info) this.cache.set(chainID, info);
    return info;
  }

  async listLayers(): Promise<LayerInfo[]> {
    const out: LayerInfo[] = [];
    for (const name of await fsp.readdir(this.layersDir)) {
      const info = await this.layer(`sha256:${name}`);
      if (info) out.push(info);
    }
    return out;
  }

  async draft(): Promise<LayerDraft> {
    const base = path.join(this.draftsDir, crypto.randomBytes(8).toString('hex'));
    const dir = path.join(base, 'fs');
    await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
    return {
      dir,
      commit: async (info) => {
        if (info.parent !== null && !(await this.layer(info.parent))) {
          throw notFound(`parent layer ${info.parent} does not exist`);
        }
        const layerInfo: LayerInfo = { ...info };
        await writeFileAtomic(path.join(base, 'meta.json'), JSON.stringify(layerInfo));
        await native().syncfs(dir);
        const target = this.layerPath(info.chainID);
        try {
          await fsp.rename(base, target);
        } catch (err) {
          // Someone committed the same layer first: theirs is identical.
          const code = errnoCode(err);
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
          await fsp.rm(base, { recursive: true, force: true });
        }
        await syncDir(this.layersDir);
        await this.ensureLink(digestHex(info.chainID));
        this.cache.set(info.chainID, layerInfo);
        return layerInfo;
      },
      discard: async () => {
        await fsp.rm(base, { recursive: true, force: true });
      },
    };
  }

  async removeLayer(chainID: Digest): Promise<void> {
    const hex = digestHex(chainID);
    this.cache.delete(chainID);
    await fsp.rm(path.join(this.linksDir, hex.slice(0, 16)), { force: true });
    // Rename first so a crash mid-delete never leaves a half layer under its name.
    const doomed = path.join(this.draftsDir, `rm-${hex}-${crypto.randomBytes(4).toString('hex')}`);
    try {
      await fsp.rename(this.layerPath(chainID), doomed);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    await fsp.rm(doomed, { recursive: true, force: true });
  }

  /** Short lowerdir paths of the chain ending at chainID, topmost first. */
  private async lowerDirs(chainID: Digest | null): Promise<string[]> {
    const dirs: string[] = [];
    let cur = chainID;
    while (cur !== null) {
      const info = await this.layer(cur);
      if (!info) throw notFound(`layer ${cur} does not exist`);
      dirs.push(path.join(this.linksDir, digestHex(cur).slice(0, 16)));
      cur = info.parent;
    }
    if (dirs.length === 0) dirs.push(this.emptyDir);
    return dirs;
  }

  async prepare(key: string, parent: Digest | null): Promise<OverlayMount> {
    const dir = path.join(this.activeDir, key);
    const upperDir = path.join(dir, 'upper');
    const workDir = path.join(dir, 'work');
    // directory entries, synchronously: cheaper than round trips through the
    // thread pool, where they would wait behind other work's fsyncs
    fs.mkdirSync(upperDir, { recursive: true, mode: 0o755 });
    fs.mkdirSync(workDir, { recursive: true, mode: 0o700 });
    // written last (its directory synced): a snapshot with a parent file is whole
    await writeFileAtomic(path.join(dir, 'parent'), parent ?? '');
    this.parents.set(key, parent);
    return { lowerDirs: await this.lowerDirs(parent), upperDir, workDir };
  }

  private async parentOf(key: string): Promise<Digest | null> {
    const known = this.parents.get(key);
    if (known !== undefined) return known;
    const removals = this.removals;
    let text: string;
    try {
      text = await fsp.readFile(path.join(this.activeDir, key, 'parent'), 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw notFound(`snapshot ${key} does not exist`);
      throw err;
    }
    const parent = text ? (text as Digest) : null;
    if (removals === this.removals) this.parents.set(key, parent);
    return parent;
  }

  /** The chain an active snapshot sits on (null: none, or unknown key). */
  async activeParent(key: string): Promise<Digest | null> {
    return this.parentOf(key).catch(() => null);
  }

  async mounts(key: string): Promise<OverlayMount> {
    const dir = path.join(this.activeDir, key);
    return { lowerDirs: await this.lowerDirs(await this.parentOf(key)), upperDir: path.join(dir, 'upper'), workDir: path.join(dir, 'work') };
  }

  /** The rename is the removal; the files go in the background (drafts/ is swept at start). */
  async remove(key: string): Promise<void> {
    const dir = path.join(this.activeDir, key);
    const doomed = path.join(this.draftsDir, `rm-${key}-${crypto.randomBytes(4).toString('hex')}`);
    this.parents.delete(key);
    this.removals++;
    try {
      fs.renameSync(dir, doomed); // a directory entry: no thread-pool round trip
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    void fsp.rm(doomed, { recursive: true, force: true }).catch(() => {});
  }

  async activeKeys(): Promise<string[]> {
    return fsp.readdir(this.activeDir);
  }

  async usage(key: string): Promise<number> {
    return diskUsage(path.join(this.activeDir, key, 'upper'));
  }
}

/** Sum of regular file sizes under dir (hard links counted once). */
export async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  const seen = new Set<number>();
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await fsp.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const st = await fsp.lstat(p);
        if (st.nlink > 1) {
          if (seen.has(st.ino)) continue;
          seen.add(st.ino);
        }
        total += st.size;
      }
    }
  };
  await walk(dir);
  return total;
}

/** Overlay mount option string for a mount description. */
export function overlayOptions(m: OverlayMount): string {
  return `lowerdir=${m.lowerDirs.join(':')},upperdir=${m.upperDir},workdir=${m.workDir}`;
}
