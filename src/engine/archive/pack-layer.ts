/**
 * Packs a directory of overlay "upper" form (a container's writable layer)
 * into a layer tar: 0:0 character devices become `.wh.NAME` whiteouts and
 * opaque directories get `.wh..wh..opq`, the reverse of apply-layer.ts.
 * Hard links are kept as links; entries are in sorted order.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type tar from 'tar-stream';
import { tarStream } from './tar-stream.js';
import { native } from '../runtime/native.js';
import { OPAQUE_WHITEOUT, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX } from './apply-layer.js';

function isWhiteout(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function major(rdev: number): number {
  return Math.floor(rdev / 256) & 0xfff;
}

function minor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
}

export interface PackOptions {
  /** Leaves out an entry (and, for a directory, all below it). */
  exclude?: (relPath: string, st: fs.Stats) => boolean;
  /** Directories written only if something below them is (copy-ups made for excluded entries). */
  omitIfEmpty?: (relPath: string) => boolean;
}

export function packLayer(root: string, options: PackOptions = {}): Readable {
  const pack = tarStream().pack();
  const links = new Map<string, string>();

  // headers of omitIfEmpty directories, written before their first child
  const pending: tar.Header[] = [];
  const entry = (h: tar.Header): Promise<void> =>
    new Promise((resolve, reject) => {
      pack.entry(h, '', (err) => (err ? reject(err) : resolve()));
    });
  const flushPending = async (): Promise<void> => {
    for (const h of pending.splice(0)) await entry(h);
  };

  const add = async (header: tar.Header | Partial<tar.Header> & { name: string }): Promise<void> => {
    await flushPending();
    await entry({ mtime: new Date(0), uid: 0, gid: 0, mode: 0o644, ...header } as tar.Header);
  };

  const addFile = async (header: tar.Header, file: string): Promise<void> => {
    await flushPending();
    return new Promise((resolve, reject) => {
      const body = pack.entry(header, (err) => (err ? reject(err) : resolve()));
      const src = fs.createReadStream(file);
      src.on('error', reject);
      src.pipe(body);
    });
  };

  const walk = async (rel: string): Promise<void> => {
    const dir = path.join(root, rel);
    const names = (await fsp.readdir(dir)).sort();
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      const abs = path.join(root, childRel);
      const st = await fsp.lstat(abs);
      if (options.exclude?.(childRel, st)) continue;
      const base = { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtime: st.mtime };
      if (isWhiteout(st)) {
        const wh = rel ? `${rel}/${WHITEOUT_PREFIX}${name}` : `${WHITEOUT_PREFIX}${name}`;
        await add({ name: wh, type: 'file', size: 0, mode: 0o600, mtime: st.mtime });
        continue;
      }
      if (st.isDirectory()) {
        const header = { ...base, name: `${childRel}/`, type: 'directory' } as tar.Header;
        const opaque = native().lgetxattr(abs, OVERLAY_OPAQUE_XATTR)?.toString() === 'y';
        if (!opaque && options.omitIfEmpty?.(childRel)) {
          pending.push(header);
          await walk(childRel);
          // nothing below was written: drop it (and only it) from the pending list
          if (pending.at(-1) === header) pending.pop();
          continue;
        }
        await add(header);
        if (opaque) await add({ name: `${childRel}/${OPAQUE_WHITEOUT}`, type: 'file', size: 0, mode: 0o600, mtime: st.mtime });
        await walk(childRel);
        continue;
      }
      const inodeKey = `${st.dev}:${st.ino}`;
      if (st.nlink > 1 && !st.isDirectory()) {
        const first = links.get(inodeKey);
        if (first) {
          await add({ ...base, name: childRel, type: 'link', linkname: first, size: 0 });
          continue;
        }
        links.set(inodeKey, childRel);
      }
      if (st.isSymbolicLink()) {
        await add({ ...base, name: childRel, type: 'symlink', linkname: await fsp.readlink(abs), size: 0 });
      } else if (st.isFile()) {
        await addFile({ ...base, name: childRel, type: 'file', size: st.size } as tar.Header, abs);
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        await add({ ...base, name: childRel, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major(st.rdev), devminor: minor(st.rdev), size: 0 });
      } else if (st.isFIFO()) {
        await add({ ...base, name: childRel, type: 'fifo', size: 0 });
      }
      // sockets are not archived (as tar cannot)
    }
  };

  walk('')
    .then(() => pack.finalize())
    .catch((err: Error) => pack.destroy(err));
  return pack as unknown as Readable;
}
