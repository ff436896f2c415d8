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

/**
 * Resolves symlinks in every component of a path relative to a root, as
 * the container would see them: an absolute target restarts at the root,
 * ".." never climbs above it. readLink answers the target of a relative
 * path, or undefined when it is not a symlink (or does not exist).
 */
export async function resolveInRoot(unsafePath: string, readLink: (rel: string) => Promise<string | undefined>): Promise<string> {
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
    const target = await readLink([...resolved, part].join('/'));
    if (target === undefined) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw invalidArgument(`too many levels of symbolic links: ${unsafePath}`);
    if (target.startsWith('/')) resolved.length = 0;
    queue.unshift(...target.split('/'));
  }
  return resolved.join('/');
}

export async function secureJoin(root: string, unsafePath: string): Promise<string> {
  const rel = await resolveInRoot(unsafePath, async (candidate) => {
    const p = path.join(root, candidate);
    try {
      if (!(await fsp.lstat(p)).isSymbolicLink()) return undefined;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    }
    return fsp.readlink(p);
  });
  return path.join(root, rel);
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
