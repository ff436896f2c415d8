/**
 * Resolving a path inside a container's root the way the container would:
 * symlinks are followed, but absolute targets and ".." are taken relative to
 * the root, so the result never leaves it (like Go's securejoin).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, invalidArgument } from '../../core/errdefs/index.js';

const MAX_SYMLINKS = 255;

export async function secureJoin(root: string, unsafePath: string): Promise<string> {
  const resolved: string[] = [];
  const queue = unsafePath.split('/');
  let links = 0;
  while (queue.length) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    let isLink = false;
    try {
      isLink = (await fsp.lstat(candidate)).isSymbolicLink();
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw invalidArgument(`too many levels of symbolic links: ${unsafePath}`);
    const target = await fsp.readlink(candidate);
    if (target.startsWith('/')) resolved.length = 0;
    queue.unshift(...target.split('/'));
  }
  return path.join(root, ...resolved);
}

/** Reads a file inside the root, or undefined when it does not exist. */
export async function readInRoot(root: string, file: string): Promise<string | undefined> {
  try {
    const p = await secureJoin(root, file);
    const st = await fsp.stat(p);
    if (!st.isFile() || st.size > 16 << 20) return undefined;
    return await fsp.readFile(p, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
    throw err;
  }
}

/**
 * secureJoin without the thread pool, for the exec path: a few lstats of
 * cached dentries cost less than one round trip through libuv's workers.
 */
export function secureJoinSync(root: string, unsafePath: string): string {
  const resolved: string[] = [];
  const queue = unsafePath.split('/');
  let links = 0;
  while (queue.length) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    const st = fs.lstatSync(candidate, { throwIfNoEntry: false });
    if (!st?.isSymbolicLink()) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw invalidArgument(`too many levels of symbolic links: ${unsafePath}`);
    const target = fs.readlinkSync(candidate);
    if (target.startsWith('/')) resolved.length = 0;
    queue.unshift(...target.split('/'));
  }
  return path.join(root, ...resolved);
}

/** readInRoot, synchronously (small files such as /etc/passwd). */
export function readInRootSync(root: string, file: string): string | undefined {
  try {
    const p = secureJoinSync(root, file);
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (!st || !st.isFile() || st.size > 16 << 20) return undefined;
    return fs.readFileSync(p, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
    throw err;
  }
}
