/**
 * COPY and ADD into an image's root filesystem (a mounted overlay whose
 * upper dir becomes the step's layer), with Docker's rules: a directory
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
import { secureJoin } from '../runtime/rootfs-path.js';
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

export class RootfsWriter {
  private readonly parents = new Map<string, string>();
  private readonly buffers: Buffer[] = [];

  constructor(private readonly root: string) {}

  /** Host path for an image path whose parents are resolved inside the root; the last component is not followed. */
  private async hostPath(imagePath: string): Promise<string> {
    const parent = path.posix.dirname(imagePath);
    let resolved = this.parents.get(parent);
    if (!resolved) {
      resolved = await secureJoin(this.root, parent);
      this.parents.set(parent, resolved);
    }
    return path.join(resolved, path.posix.basename(imagePath));
  }

  private async existing(host: string): Promise<fs.Stats | undefined> {
    try {
      return await fsp.lstat(host);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async isDirectory(imagePath: string): Promise<boolean> {
    const host = await secureJoin(this.root, imagePath);
    return (await this.existing(host))?.isDirectory() ?? false;
  }

  /** mkdir -p inside the root; new directories get mode 0755 and the owner. */
  async mkdirAll(imagePath: string, owner: Owner): Promise<void> {
    const parts = imagePath.split('/').filter(Boolean);
    let cur = '/';
    for (const part of parts) {
      cur = path.posix.join(cur, part);
      const host = await secureJoin(this.root, cur);
      const st = await this.existing(host);
      if (st?.isDirectory()) continue;
      if (st) await fsp.rm(host, { recursive: true, force: true });
      await fsp.mkdir(host, { mode: 0o755 });
      await fsp.chmod(host, 0o755);
      await fsp.lchown(host, owner.uid, owner.gid);
    }
    this.parents.clear(); // resolutions may have changed
  }

  /** Copies one planned source to its destination. */
  async copy(tree: SourceTree, item: CopyPlanItem, o: CopyOptions): Promise<void> {
    const defaultOwner = o.owner ?? { uid: 0, gid: 0 };
    if (item.node.type === 'directory') {
      await this.mkdirAll(o.dest, defaultOwner);
      await this.copyChildren(tree, item.path, o.dest, o);
      return;
    }
    let target = o.dest;
    if (o.destIsDir || (await this.isDirectory(o.dest))) {
      await this.mkdirAll(o.dest, defaultOwner);
      target = path.posix.join(o.dest, item.name);
    } else {
      await this.mkdirAll(path.posix.dirname(o.dest), defaultOwner);
    }
    await this.copyEntry(tree, item.path, item.node, target, o);
  }

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
        const target = path.posix.join(dest, name);
        await this.copyEntry(tree, src, node, target, o);
        if (node.type === 'directory') subdirs.push([src, target]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_FILES, names.length) }, worker));
    for (const [src, target] of subdirs.sort((a, b) => a[0].localeCompare(b[0]))) await this.copyChildren(tree, src, target, o);
  }

  private async copyEntry(tree: SourceTree, src: string, node: SourceNode, target: string, o: CopyOptions): Promise<void> {
    const host = await this.hostPath(target);
    const owner = o.owner ?? (o.keepOwners ? { uid: node.uid, gid: node.gid } : { uid: 0, gid: 0 });
    const mode = o.mode ?? node.mode;
    const st = await this.existing(host);
    if (node.type === 'directory') {
      if (st && !st.isDirectory()) await fsp.rm(host, { force: true });
      if (!st?.isDirectory()) await fsp.mkdir(host, { mode: 0o700 });
      await fsp.chmod(host, mode);
      await fsp.lchown(host, owner.uid, owner.gid);
      await fsp.utimes(host, node.mtime, node.mtime);
      return;
    }
    if (st) await fsp.rm(host, { recursive: true, force: true });
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
