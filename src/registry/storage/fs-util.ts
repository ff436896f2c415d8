/**
 * Small durable-filesystem helpers for the registry's metadata files: marker
 * files, directories whose creation survives power loss, listing that treats
 * a missing directory as empty.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../../core/errdefs/index.js';
import { syncDir } from '../../util/atomic-file.js';

/** Directories known to exist durably; saves a mkdir per write on the hot path. */
const knownDirs = new Set<string>();

/** Creates a directory and any missing parents, fsyncing each new entry's parent. */
export async function ensureDir(dir: string): Promise<void> {
  if (knownDirs.has(dir)) return;
  try {
    await fsp.mkdir(dir);
    await ensureParentSynced(dir);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') {
      await ensureDir(path.dirname(dir));
      try {
        await fsp.mkdir(dir);
      } catch (again) {
        if (errnoCode(again) !== 'EEXIST') throw again;
      }
      await ensureParentSynced(dir);
    } else if (code !== 'EEXIST') {
      throw err;
    }
  }
  knownDirs.add(dir);
}

async function ensureParentSynced(dir: string): Promise<void> {
  await syncDir(path.dirname(dir));
}

/** Forgets cached directories below a path (after removing them). */
export function forgetDirs(prefix: string): void {
  for (const dir of knownDirs) {
    if (dir === prefix || dir.startsWith(prefix + path.sep)) knownDirs.delete(dir);
  }
}

/** An empty marker file: creation is atomic by itself; the directory fsync makes it durable. */
export async function createMarker(file: string): Promise<void> {
  await ensureDir(path.dirname(file));
  const handle = await fsp.open(file, 'a', 0o644);
  await handle.close();
  await syncDir(path.dirname(file));
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fsp.access(file);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return false;
    throw err;
  }
}

export async function readTextOrUndefined(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

export async function listDir(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return [];
    throw err;
  }
}

/** Removes a file; returns whether it existed. Fsyncs the directory so the removal is durable. */
export async function removeFile(file: string): Promise<boolean> {
  try {
    await fsp.unlink(file);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return false;
    throw err;
  }
  await syncDir(path.dirname(file));
  return true;
}
