/**
 * Where COPY and ADD read from: the build context (context.ts), an earlier
 * stage's or another image's filesystem, or an unpacked ADD archive (a
 * directory on the host, DirectoryTree). Paths are relative to the tree's
 * root; symlinks are resolved inside the tree, never out of it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { errnoCode } from '../../core/errdefs/index.js';
import { resolveInRoot } from '../runtime/rootfs-path.js';
import { globMatch, hasGlob } from '../../core/build/glob.js';

export interface SourceNode {
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  linkname?: string;
}

export interface SourceTree {
  lstat(rel: string): Promise<SourceNode | undefined>;
  /** Child names of a directory, sorted. */
  list(rel: string): Promise<string[]>;
  /** A file's data as a stream. */
  open(rel: string): Readable;
  /** Appends the file's data to fh, using buffer for the transfer. */
  readInto(rel: string, fh: fsp.FileHandle, buffer: Buffer): Promise<void>;
  /** sha256 (hex) of a file's data, or of a symlink's target. */
  digest(rel: string): Promise<string>;
}

/** Resolves symlinks in every component, relative to the tree's root. */
export function resolveInTree(tree: SourceTree, rel: string): Promise<string> {
  return resolveInRoot(rel, async (candidate) => {
    const node = await tree.lstat(candidate);
    return node?.type === 'symlink' ? (node.linkname ?? '') : undefined;
  });
}

/**
 * Expands a COPY source (maybe with wildcards) to the paths it names, each
 * with symlinks resolved. Components are matched one at a time, as Go's
 * filepath.Glob does.
 */
export async function expandSource(tree: SourceTree, source: string): Promise<{ name: string; path: string }[]> {
  const parts = source.split('/').filter((p) => p !== '' && p !== '.');
  if (!parts.some(hasGlob)) {
    const resolved = await resolveInTree(tree, parts.join('/'));
    if (resolved !== '' && !(await tree.lstat(resolved))) return [];
    return [{ name: parts.at(-1) ?? '', path: resolved }];
  }
  let current: string[] = [''];
  for (const part of parts) {
    const next: string[] = [];
    for (const dir of current) {
      const resolvedDir = await resolveInTree(tree, dir);
      const node = resolvedDir === '' ? ({ type: 'directory' } as const) : await tree.lstat(resolvedDir);
      if (node?.type !== 'directory') continue;
      if (!hasGlob(part)) {
        const child = dir ? `${dir}/${part}` : part;
        if (await tree.lstat(await resolveInTree(tree, child))) next.push(child);
        continue;
      }
      for (const name of await tree.list(resolvedDir)) {
        if (globMatch(part, name)) next.push(dir ? `${dir}/${name}` : name);
      }
    }
    current = next;
  }
  return Promise.all(current.map(async (p) => ({ name: path.posix.basename(p), path: await resolveInTree(tree, p) })));
}

/**
 * A content checksum of a source (file or directory tree): names, types,
 * modes, owners and data; not modification times, so touching a file does
 * not invalidate the cache.
 */
export async function treeChecksum(tree: SourceTree, rel: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  const walk = async (p: string, display: string): Promise<void> => {
    const node = await tree.lstat(p);
    if (!node) return;
    const data = node.type === 'directory' ? '' : await tree.digest(p);
    hash.update(`${display}\0${node.type}\0${node.mode.toString(8)}\0${node.uid}:${node.gid}\0${data}\n`);
    if (node.type !== 'directory') return;
    for (const name of await tree.list(p)) await walk(p ? `${p}/${name}` : name, display ? `${display}/${name}` : name);
  };
  await walk(rel, '');
  return hash.digest('hex');
}

/** A directory on the host (an image's mounted root, an unpacked archive). */
export class DirectoryTree implements SourceTree {
  constructor(readonly root: string) {}

  private abs(rel: string): string {
    return rel ? path.join(this.root, rel) : this.root;
  }

  async lstat(rel: string): Promise<SourceNode | undefined> {
    let st: fs.Stats;
    try {
      st = await fsp.lstat(this.abs(rel));
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    }
    const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.size, mtime: st.mtime };
    if (st.isDirectory()) return { ...base, type: 'directory' };
    if (st.isSymbolicLink()) return { ...base, type: 'symlink', linkname: await fsp.readlink(this.abs(rel)) };
    if (st.isFile()) return { ...base, type: 'file' };
    return undefined; // devices, fifos, sockets and whiteouts are not copied
  }

  async list(rel: string): Promise<string[]> {
    return (await fsp.readdir(this.abs(rel))).sort();
  }

  open(rel: string): Readable {
    // rel is resolved inside the tree (resolveInTree): no symlink left to follow
    return fs.createReadStream(this.abs(rel), { highWaterMark: 1 << 20 });
  }

  async readInto(rel: string, fh: fsp.FileHandle, buffer: Buffer): Promise<void> {
    const src = await fsp.open(this.abs(rel), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      for (;;) {
        const { bytesRead } = await src.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        await fh.write(buffer, 0, bytesRead);
      }
    } finally {
      await src.close();
    }
  }

  async digest(rel: string): Promise<string> {
    const node = await this.lstat(rel);
    if (node?.type === 'symlink') return crypto.createHash('sha256').update(node.linkname ?? '').digest('hex');
    const hash = crypto.createHash('sha256');
    for await (const chunk of fs.createReadStream(this.abs(rel), { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }
}
