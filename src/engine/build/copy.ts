/**
 * COPY and ADD into a new layer on top of an image, with Docker's rules: a directory
 * source copies its contents; several sources need a destination ending in
 * `/`; a file goes into a directory destination under its own name;
 * missing parent directories are created (0755, owned by --chown's user or
 * root); an existing entry of another type is replaced. Every path written
 * is resolved inside the root, so an image's symlinks cannot send a write
 * out of it.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, invalidArgument, notFound } from '../../core/errdefs/index.js';
import { resolveInRoot } from '../runtime/rootfs-path.js';
import { type SourceNode, type SourceTree, expandSource } from './source-tree.js';

export interface Owner {
  uid: number;
  gid: number;
}

export interface CopyPlanItem {
  /** The source as written (after variable expansion), for messages. */
  source: string;
  /** The name the file gets in a directory destination. */
  name: string;
  /** Resolved path in the source tree. */
  path: string;
  node: SourceNode;
}

/** Expands COPY sources against the tree; errors as Docker words them. */
export async function planCopy(tree: SourceTree, sources: string[], keyword: string, what: string): Promise<CopyPlanItem[]> {
  const items: CopyPlanItem[] = [];
  for (const source of sources) {
    const normalized = path.posix.normalize(source.startsWith('/') ? source.slice(1) : source);
    if (normalized === '..' || normalized.startsWith('../')) {
      throw invalidArgument(`${keyword} failed: forbidden path outside the build context: ${source} ()`);
    }
    const matches = await expandSource(tree, normalized);
    if (matches.length === 0) {
      if (/[*?[]/.test(source)) throw invalidArgument(`${keyword} failed: no source files were specified`);
      throw notFound(`${keyword} failed: file not found in ${what}: stat ${source}: file does not exist`);
    }
    for (const m of matches) {
      const node = m.path === '' ? ({ type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: new Date() } as SourceNode) : await tree.lstat(m.path);
      if (!node) throw notFound(`${keyword} failed: file not found in ${what}: stat ${source}: file does not exist`);
      items.push({ source, name: m.name, path: m.path, node });
    }
  }
  return items;
}

export interface CopyOptions {
  /** Absolute destination inside the image. */
  dest: string;
  /** The destination was written with a trailing slash (a directory). */
  destIsDir: boolean;
  /** Owner of everything written; undefined keeps the source's (images) or uses root (context). */
  owner?: Owner;
  keepOwners: boolean;
  /** --chmod: mode of everything written. */
  mode?: number;
}

const PARALLEL_FILES = 16;
const BUFFER_SIZE = 1 << 20;

/**
 * Writes a step's changes straight into a new layer directory, looking up
 * what already exists through a view of the image (a mounted overlay of its
 * layers). What the view shows is "copied up" the way overlayfs would: a
 * parent directory that exists in the image is created in the layer with
 * the image's mode and owner. COPY never deletes, so the layer needs no
 * whiteouts: an entry in it hides whatever the image has at that path.
 */
export class LayerTarget {
  private readonly buffers: Buffer[] = [];
  private readonly ensured = new Set<string>();

  constructor(
    /** The image's filesystem, read only. */
    private readonly image: string,
    /** The new layer's directory. */
    private readonly layer: string,
  ) {}

  private async lstatIn(root: string, rel: string): Promise<fs.Stats | undefined> {
    try {
      return await fsp.lstat(rel ? path.join(root, rel) : root);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  /** What a path is in the image with this layer on top. */
  private async lstat(rel: string): Promise<{ st: fs.Stats; inLayer: boolean } | undefined> {
    const inLayer = await this.lstatIn(this.layer, rel);
    if (inLayer) return { st: inLayer, inLayer: true };
    const inImage = await this.lstatIn(this.image, rel);
    return inImage ? { st: inImage, inLayer: false } : undefined;
  }

  /** Resolves symlinks in an image path inside the root (as securejoin does), over the layered view. */
  private resolve(imagePath: string): Promise<string> {
    return resolveInRoot(imagePath, async (rel) => {
      const found = await this.lstat(rel);
      if (!found?.st.isSymbolicLink()) return undefined;
      return fsp.readlink(path.join(found.inLayer ? this.layer : this.image, rel));
    });
  }

  async isDirectory(imagePath: string): Promise<boolean> {
    return (await this.lstat(await this.resolve(imagePath)))?.st.isDirectory() ?? false;
  }

  /**
   * Makes sure a resolved directory path exists in the layer: copied up
   * from the image when it is a directory there, else created (0755, owner).
   */
  private async ensureDir(rel: string, owner: Owner): Promise<void> {
    if (rel === '' || this.ensured.has(rel)) return;
    await this.ensureDir(rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '', owner);
    const inLayer = await this.lstatIn(this.layer, rel);
    if (inLayer?.isDirectory()) {
      this.ensured.add(rel);
      return;
    }
    const host = path.join(this.layer, rel);
    if (inLayer) await fsp.rm(host, { force: true });
    const inImage = await this.lstatIn(this.image, rel);
    await fsp.mkdir(host, { mode: 0o700 });
    if (inImage?.isDirectory()) {
      await fsp.lchown(host, inImage.uid, inImage.gid);
      await fsp.chmod(host, inImage.mode & 0o7777);
    } else {
      await fsp.lchown(host, owner.uid, owner.gid);
      await fsp.chmod(host, 0o755);
    }
    this.ensured.add(rel);
  }

  /** mkdir -p of an image path: new directories get mode 0755 and the owner. */
  async mkdirAll(imagePath: string, owner: Owner): Promise<void> {
    await this.ensureDir(await this.resolve(imagePath), owner);
  }

  /** Copies one planned source to its destination. */
  async copy(tree: SourceTree, item: CopyPlanItem, o: CopyOptions): Promise<void> {
    const defaultOwner = o.owner ?? { uid: 0, gid: 0 };
    if (item.node.type === 'directory') {
      await this.mkdirAll(o.dest, defaultOwner);
      await this.copyChildren(tree, item.path, await this.resolve(o.dest), o);
      return;
    }
    let target: string;
    if (o.destIsDir || (await this.isDirectory(o.dest))) {
      await this.mkdirAll(o.dest, defaultOwner);
      target = path.posix.join(await this.resolve(o.dest), item.name);
    } else {
      const parent = await this.resolve(path.posix.dirname(o.dest));
      await this.ensureDir(parent, defaultOwner);
      target = parent ? `${parent}/${path.posix.basename(o.dest)}` : path.posix.basename(o.dest);
    }
    await this.copyEntry(tree, item.path, item.node, target, o);
  }

  /** Copies a directory's children into the resolved layer directory dest. */
  private async copyChildren(tree: SourceTree, dir: string, dest: string, o: CopyOptions): Promise<void> {
    const names = await tree.list(dir);
    const subdirs: [string, string][] = [];
    const queue = [...names];
    const worker = async (): Promise<void> => {
      for (;;) {
        const name = queue.shift();
        if (name === undefined) return;
        const src = dir ? `${dir}/${name}` : name;
        const node = await tree.lstat(src);
        if (!node) continue;
        const target = dest ? `${dest}/${name}` : name;
        await this.copyEntry(tree, src, node, target, o);
        if (node.type === 'directory') subdirs.push([src, target]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_FILES, names.length) }, worker));
    for (const [src, target] of subdirs.sort((a, b) => a[0].localeCompare(b[0]))) await this.copyChildren(tree, src, target, o);
  }

  /** Writes one entry at a resolved layer path whose parent is in the layer. */
  private async copyEntry(tree: SourceTree, src: string, node: SourceNode, target: string, o: CopyOptions): Promise<void> {
    const host = path.join(this.layer, target);
    const owner = o.owner ?? (o.keepOwners ? { uid: node.uid, gid: node.gid } : { uid: 0, gid: 0 });
    const mode = o.mode ?? node.mode;
    const existing = await this.lstatIn(this.layer, target);
    if (node.type === 'directory') {
      if (existing && !existing.isDirectory()) await fsp.rm(host, { force: true });
      if (!existing?.isDirectory()) await fsp.mkdir(host, { mode: 0o700 });
      await fsp.lchown(host, owner.uid, owner.gid);
      await fsp.chmod(host, mode);
      await fsp.utimes(host, node.mtime, node.mtime);
      this.ensured.add(target);
      return;
    }
    if (existing) await fsp.rm(host, { recursive: true, force: true });
    if (node.type === 'symlink') {
      await fsp.symlink(node.linkname ?? '', host);
      await fsp.lchown(host, owner.uid, owner.gid);
      await fsp.lutimes(host, node.mtime, node.mtime);
      return;
    }
    const fh = await fsp.open(host, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    const buffer = this.buffers.pop() ?? Buffer.allocUnsafe(BUFFER_SIZE);
    try {
      await tree.readInto(src, fh, buffer);
      await fh.chown(owner.uid, owner.gid);
      await fh.chmod(mode); // after chown, which clears set-id bits
      await fh.utimes(node.mtime, node.mtime);
    } finally {
      this.buffers.push(buffer);
      await fh.close();
    }
  }
}
