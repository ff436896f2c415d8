/**
 * Resolving a path inside a container's root the way the container would:
 * symlinks are followed, but absolute targets and ".." are taken relative to
 * the root, so the result never leaves it (like Go's securejoin).
 */
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
