/**
 * The client half of `berth cp`, as the docker CLI does it: deciding from
 * the source and the destination what to send or unpack and under which
 * name (Docker's CopyInfo and PrepareArchiveCopy rules), packing a local
 * path into a tar, and unpacking a container's tar onto the local disk.
 *
 * Unpacking never writes through a symlink and never outside the
 * destination: entry names are cleaned and refused if they climb out, a
 * parent directory that is a symlink is refused, and files are created
 * with O_EXCL | O_NOFOLLOW after whatever was there is removed.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';

export class CopyError extends Error {}

/** What one side of a copy is. */
export interface CopyInfo {
  path: string;
  exists: boolean;
  isDir: boolean;
  /** The name entries should carry instead of the path's own (a followed symlink). */
  rebaseName?: string;
}

/** "container:path" or a local path ("/abs", "./x:y" and "x" are local). */
export function splitCopyArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/')) return { path: arg };
  const i = arg.indexOf(':');
  if (i < 0 || arg.startsWith('.')) return { path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) };
}

/** Go's filepath.Base semantics for a path that may end in "/" or "/.". */
function specifiesCurrentDir(p: string): boolean {
  return path.posix.basename(p) === '.' || p === '.' || p.endsWith('/.');
}

/** Directory and entry of a path; "dir/." keeps "." as the entry. */
export function splitPathDirEntry(p: string): { dir: string; base: string } {
  let cleaned = path.posix.normalize(p).replace(/(.)\/+$/, '$1');
  if (specifiesCurrentDir(p)) cleaned = cleaned === '/' ? '/.' : `${cleaned.replace(/\/\.$/, '')}/.`;
  if (cleaned === '/') return { dir: '/', base: '/' };
  return { dir: path.posix.dirname(cleaned), base: path.posix.basename(cleaned) };
}

export function assertsDirectory(p: string): boolean {
  return p.endsWith('/') || specifiesCurrentDir(p);
}

/**
 * The name a followed symlink's entries get: the link's own name (a
 * trailing "/" or "/." on the link keeps its meaning on the target).
 */
export function rebaseNameFor(requested: string, resolved: string): { resolved: string; rebaseName?: string } {
  let r = resolved;
  if (specifiesCurrentDir(requested) && !specifiesCurrentDir(r)) r = `${r.replace(/\/$/, '')}/.`;
  else if (requested.endsWith('/') && !r.endsWith('/')) r = `${r}/`;
  const a = path.posix.basename(requested.replace(/\/+$/, '')) || '/';
  const b = path.posix.basename(r.replace(/\/+$/, '')) || '/';
  return a !== b ? { resolved: r, rebaseName: a } : { resolved: r };
}

/** A local source: symlinks followed up to its last component, or fully with -L. */
export async function localSourceInfo(p: string, followLink: boolean): Promise<CopyInfo> {
  let resolved: string;
  let rebaseName: string | undefined;
  if (followLink) {
    const real = await fsp.realpath(p);
    ({ resolved, rebaseName } = rebaseNameFor(p, real));
  } else {
    const { dir, base } = splitPathDirEntry(p);
    const realDir = await fsp.realpath(dir);
    resolved = base === '/' ? '/' : path.posix.join(realDir, base) + (base === '.' ? '/.' : '');
  }
  const st = await fsp.lstat(resolved);
  return { path: resolved, exists: true, isDir: st.isDirectory(), rebaseName };
}

/** A local destination: symlinks in it followed; it need not exist, but its parent must. */
export async function localDestinationInfo(p: string): Promise<CopyInfo> {
  let current = p;
  for (let n = 0; ; n++) {
    let st: fs.Stats;
    try {
      st = await fsp.lstat(current);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const parent = splitPathDirEntry(current).dir;
      const pst = await fsp.stat(parent).catch(() => undefined);
      if (!pst) throw new CopyError(`invalid output path: directory ${JSON.stringify(parent)} does not exist`);
      if (!pst.isDirectory()) throw new CopyError('not a directory');
      return { path: current, exists: false, isDir: false };
    }
    if (!st.isSymbolicLink()) return { path: current, exists: true, isDir: st.isDirectory() };
    if (n > 10) throw new CopyError(`too many symlinks in ${p}`);
    const target = await fsp.readlink(current);
    current = target.startsWith('/') ? target : path.posix.join(splitPathDirEntry(current).dir, target);
  }
}

/** Where to unpack, and how entry names change, for a source copied onto a destination (PrepareArchiveCopy). */
export function prepareCopy(src: CopyInfo, dst: CopyInfo): { dstDir: string; rename?: { from: string; to: string } } {
  const { dir: dstDir, base: dstBase } = splitPathDirEntry(dst.path);
  const srcBase = src.rebaseName || splitPathDirEntry(src.path).base;
  if (dst.exists && dst.isDir) return { dstDir: dst.path };
  if (dst.exists && src.isDir) throw new CopyError('cannot copy directory');
  if (!dst.exists && !src.isDir && assertsDirectory(dst.path)) throw new CopyError('no such directory');
  return { dstDir, rename: { from: srcBase, to: dstBase } };
}

/** Renames an entry's leading component (Docker's RebaseArchiveEntries; "/" renames the root). */
export function renameEntry(name: string, rename: { from: string; to: string } | undefined): string {
  if (!rename) return name;
  if (rename.from === '/') return rename.to + (name.startsWith('/') ? name : `/${name}`);
  if (name === rename.from || name.startsWith(`${rename.from}/`)) return rename.to + name.slice(rename.from.length);
  return name;
}

/** Packs a local file or tree as Docker's TarResource does: entries named after the path's base (or its rebase). */
export async function packLocal(src: CopyInfo, pack: tar.Pack, rename?: { from: string; to: string }): Promise<void> {
  const { dir, base } = splitPathDirEntry(src.path);
  const root = base === '.' ? dir : path.posix.join(dir, base);
  let name = base === '/' ? '/' : base;
  if (src.rebaseName) name = renameEntry(name, { from: base, to: src.rebaseName });
  name = renameEntry(name, rename);
  const links = new Map<string, string>();
  const entry = (h: Partial<tar.Header> & { name: string }, body?: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (body) pack.entry(h, body, cb);
      else pack.entry(h, cb);
    });
  const walk = async (p: string, entryName: string): Promise<void> => {
    const st = await fsp.lstat(p);
    const h = { name: entryName, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
    if (st.isDirectory()) {
      await entry({ ...h, type: 'directory' });
      const names = (await fsp.readdir(p)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      for (const n of names) await walk(path.join(p, n), entryName === '/' ? `/${n}` : `${entryName}/${n}`);
    } else if (st.isSymbolicLink()) {
      await entry({ ...h, type: 'symlink', linkname: await fsp.readlink(p) });
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? links.get(key) : undefined;
      if (first !== undefined) return entry({ ...h, type: 'link', linkname: first });
      if (st.nlink > 1) links.set(key, entryName);
      await new Promise<void>((resolve, reject) => {
        const sink = pack.entry({ ...h, type: 'file', size: st.size }, (err) => (err ? reject(err) : resolve()));
        const rs = fs.createReadStream(p, { end: st.size > 0 ? st.size - 1 : 0, start: 0 });
        if (st.size === 0) {
          rs.destroy();
          sink.end(null);
          return;
        }
        rs.on('data', (c) => {
          if (!sink.write(c)) {
            rs.pause();
            sink.once('drain', () => rs.resume());
          }
        });
        rs.on('end', () => sink.end(null));
        rs.on('error', (err) => {
          sink.destroy(err);
          reject(err);
        });
      });
    } else if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
      const type = st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'character-device' : 'block-device';
      await entry({ ...h, type, devmajor: Math.floor(st.rdev / 256) & 0xfff, devminor: st.rdev & 0xff });
    }
    // sockets are skipped, as Docker does
  };
  await walk(root, name);
}

function cleanName(name: string): string {
  let depth = 0;
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    depth += part === '..' ? -1 : 1;
    if (depth < 0) throw new CopyError(`invalid tar entry ${JSON.stringify(name)}: it points outside the destination`);
  }
  return path.posix.normalize(`/${name}`).slice(1).replace(/\/+$/, '');
}

/** The directory for an entry under dstDir: missing parents are created; one that is a symlink is refused. */
async function entryParent(dstDir: string, rel: string, entryName: string): Promise<string> {
  let parent = dstDir;
  for (const part of rel.split('/').slice(0, -1)) {
    parent = path.join(parent, part);
    const st = await fsp.lstat(parent).catch(() => undefined);
    if (!st) await fsp.mkdir(parent, { mode: 0o755 });
    else if (st.isSymbolicLink()) throw new CopyError(`invalid tar entry ${JSON.stringify(entryName)}: it goes through a symlink`);
    else if (!st.isDirectory()) throw new CopyError(`invalid tar entry ${JSON.stringify(entryName)}: ${parent} is not a directory`);
  }
  return parent;
}

/** Unpacks a tar under dstDir (Docker's Untar with NoLchown and NoOverwriteDirNonDir). */
export async function unpackLocal(source: Readable, dstDir: string, rename?: { from: string; to: string }): Promise<void> {
  const extract = tar.extract();
  source.on('data', (chunk: Buffer) => {
    if (!extract.write(chunk)) source.pause();
  });
  extract.on('drain', () => source.resume());
  source.on('end', () => extract.end(null));
  source.on('error', (err: Error) => extract.destroy(err));
  const dirTimes: { p: string; mtime: Date }[] = [];
  for await (const e of extract as unknown as AsyncIterable<Readable & { header: tar.Header }>) {
    const h = e.header;
    let drained = false;
    try {
      const rel = cleanName(renameEntry(h.name, rename));
      if (rel === '') continue;
      await entryParent(dstDir, rel, h.name);
      const target = path.join(dstDir, rel);
      const isDir = h.type === 'directory';
      const existing = await fsp.lstat(target).catch(() => undefined);
      if (existing) {
        if (existing.isDirectory() && !isDir) throw new CopyError(`cannot overwrite directory ${JSON.stringify(target)} with non-directory ${JSON.stringify(dstDir)}`);
        if (!existing.isDirectory() && isDir) throw new CopyError(`cannot overwrite non-directory ${JSON.stringify(target)} with directory ${JSON.stringify(dstDir)}`);
        if (!isDir) await fsp.rm(target, { force: true });
      }
      const mode = h.mode & 0o7777;
      switch (h.type) {
        case 'directory':
          if (!existing) await fsp.mkdir(target, { mode: 0o700 });
          await fsp.chmod(target, mode);
          dirTimes.push({ p: target, mtime: h.mtime });
          break;
        case 'file':
        case 'contiguous-file': {
          const fh = await fsp.open(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
          try {
            for await (const chunk of e) await fh.write(chunk as Buffer);
            drained = true;
            await fh.chmod(mode);
            await fh.utimes(h.mtime, h.mtime);
          } finally {
            await fh.close();
          }
          break;
        }
        case 'symlink':
          await fsp.symlink(h.linkname ?? '', target);
          await fsp.lutimes(target, h.mtime, h.mtime).catch(() => {});
          break;
        case 'link': {
          const linkRel = cleanName(renameEntry(h.linkname ?? '', rename));
          await entryParent(dstDir, linkRel, h.name);
          await fsp.link(path.join(dstDir, linkRel), target);
          break;
        }
        default:
          // devices and fifos need root; the docker client does not create them either
          break;
      }
    } finally {
      if (!drained) e.resume();
    }
  }
  dirTimes.sort((a, b) => b.p.length - a.p.length);
  for (const d of dirTimes) await fsp.utimes(d.p, d.mtime, d.mtime).catch(() => {});
}
