/**
 * `docker diff`: what a container changed in its filesystem, read from its
 * writable layer (the overlay upper dir) against the image's layers.
 *
 *   Kind 1 (A): a path the image does not have
 *   Kind 0 (C): a path the image has, changed (a directory only when its
 *               owner or mode changed, or something directly in it was
 *               added or deleted, or its time changed along with a change below it)
 *   Kind 2 (D): a path of the image that is gone (an overlay whiteout, or a
 *               child of the image's directory hidden by an opaque directory)
 *
 * Order is Docker's walk order: depth first, names in byte order, a
 * directory before what is in it. Paths Docker keeps in a container's init
 * layer (/etc/hosts, /dev/pts, /proc...) and that the runtime created as
 * empty mount points are not changes the container made, so they are left out.
 */
import type fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../../core/errdefs/index.js';
import { native } from '../runtime/native.js';
import { OVERLAY_OPAQUE_XATTR } from '../archive/apply-layer.js';

export const CHANGE_MODIFIED = 0;
export const CHANGE_ADDED = 1;
export const CHANGE_DELETED = 2;

export interface FilesystemChange {
  Path: string;
  Kind: 0 | 1 | 2;
}

/** What Docker's init layer holds: mount points, not the container's doing. */
const INIT_LAYER_PATHS = new Set([
  '/dev', '/dev/pts', '/dev/shm', '/dev/console', '/proc', '/sys', '/.dockerenv',
  '/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/etc/mtab',
]);

export interface ChangesContainers {
  writableLayer(input: string): Promise<{ upper: string; lowers: string[] }>;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function isWhiteout(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function isOpaque(p: string): boolean {
  try {
    const v = native().lgetxattr(p, OVERLAY_OPAQUE_XATTR);
    return v !== null && v.toString() === 'y';
  } catch {
    return false;
  }
}

async function lstatOrUndefined(p: string): Promise<fs.Stats | undefined> {
  try {
    return await fsp.lstat(p);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * The image's merged view, from its layers as overlayfs merges them: the
 * topmost layer decides what a name is; whiteouts hide lower names and
 * opaque directories hide lower directories. Never follows a symlink.
 */
class LowerView {
  /** path -> the layers contributing a directory at that path, topmost first. */
  private readonly dirLayers = new Map<string, string[]>();
  private readonly entries = new Map<string, fs.Stats | null>();

  constructor(layers: string[]) {
    this.dirLayers.set('/', layers);
  }

  /** The image's entry at path, or null when the image has nothing there. */
  async entry(p: string): Promise<fs.Stats | null> {
    if (p === '/') return null;
    const known = this.entries.get(p);
    if (known !== undefined) return known;
    const layers = await this.layersOf(path.posix.dirname(p));
    let found: fs.Stats | null = null;
    const contributing: string[] = [];
    for (const layer of layers) {
      const st = await lstatOrUndefined(path.join(layer, p));
      if (!st) continue;
      if (isWhiteout(st)) break;
      if (!st.isDirectory()) {
        if (!found) found = st;
        break; // a file hides what is below; under a directory it is hidden itself
      }
      if (!found) found = st;
      contributing.push(layer);
      if (isOpaque(path.join(layer, p))) break;
    }
    this.entries.set(p, found);
    this.dirLayers.set(p, found?.isDirectory() ? contributing : []);
    return found;
  }

  private async layersOf(dir: string): Promise<string[]> {
    if (!this.dirLayers.has(dir)) await this.entry(dir);
    return this.dirLayers.get(dir) ?? [];
  }

  /** Names in the image's directory at path. */
  async children(dir: string): Promise<string[]> {
    const names = new Set<string>();
    const hidden = new Set<string>();
    for (const layer of await this.layersOf(dir)) {
      const entries = await fsp.readdir(path.join(layer, dir), { withFileTypes: true }).catch(() => [] as fs.Dirent[]);
      for (const e of entries) {
        if (hidden.has(e.name) || names.has(e.name)) continue;
        if (e.isCharacterDevice() && isWhiteout(await fsp.lstat(path.join(layer, dir, e.name)))) hidden.add(e.name);
        else names.add(e.name);
      }
    }
    return [...names];
  }
}

export class ContainerChanges {
  constructor(private readonly containers: ChangesContainers) {}

  /** Docker answers null, not [], when nothing changed. */
  async changes(input: string): Promise<FilesystemChange[] | null> {
    const { upper, lowers } = await this.containers.writableLayer(input);
    const walker = new UpperWalk(upper, new LowerView(lowers));
    const out = await walker.dir('/', false);
    return out.changes.length ? out.changes : null;
  }
}

interface DirResult {
  changes: FilesystemChange[];
  /** Something directly in the directory was added or deleted. */
  addedOrDeleted: boolean;
}

class UpperWalk {
  constructor(
    private readonly upper: string,
    private readonly lower: LowerView,
  ) {}

  /** Changes below dir (not dir itself). hidden: an opaque directory above hides the image's content. */
  async dir(dir: string, hidden: boolean): Promise<DirResult> {
    const hostDir = path.join(this.upper, dir);
    const names = await fsp.readdir(hostDir);
    const present = new Set(names);
    const candidates = [...names];
    // an opaque directory replaced the image's: its other children are gone
    if (dir !== '/' && !hidden && isOpaque(hostDir)) {
      for (const n of await this.lower.children(dir)) if (!present.has(n)) candidates.push(n);
      hidden = true;
    }
    candidates.sort(byteOrder);
    const changes: FilesystemChange[] = [];
    let addedOrDeleted = false;
    for (const name of candidates) {
      const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
      if (!present.has(name)) {
        changes.push({ Path: p, Kind: CHANGE_DELETED });
        addedOrDeleted = true;
        continue;
      }
      const st = await lstatOrUndefined(path.join(this.upper, p));
      if (!st) continue;
      if (isWhiteout(st)) {
        changes.push({ Path: p, Kind: CHANGE_DELETED });
        addedOrDeleted = true;
        continue;
      }
      const below = hidden ? null : await this.lower.entry(p);
      const initPoint = INIT_LAYER_PATHS.has(p) && (st.isDirectory() || (st.isFile() && st.size === 0));
      if (!st.isDirectory()) {
        if (initPoint && !below) continue;
        changes.push({ Path: p, Kind: below ? CHANGE_MODIFIED : CHANGE_ADDED });
        if (!below) addedOrDeleted = true;
        continue;
      }
      const opaque = !hidden && isOpaque(path.join(this.upper, p));
      const sub = await this.dir(p, hidden);
      if (!below || !below.isDirectory()) {
        if (initPoint && !below) {
          changes.push(...sub.changes);
          continue;
        }
        changes.push({ Path: p, Kind: below ? CHANGE_MODIFIED : CHANGE_ADDED }, ...sub.changes);
        if (!below) addedOrDeleted = true;
        continue;
      }
      const metadataChanged = st.mode !== below.mode || st.uid !== below.uid || st.gid !== below.gid;
      const timeChanged = Math.floor(st.mtimeMs) !== Math.floor(below.mtimeMs);
      if (metadataChanged || opaque || sub.addedOrDeleted || (timeChanged && sub.changes.length > 0)) {
        changes.push({ Path: p, Kind: CHANGE_MODIFIED });
      }
      changes.push(...sub.changes);
    }
    return { changes, addedOrDeleted };
  }
}
