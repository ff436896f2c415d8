/**
 * Layer unpacking once file writer threads are in use (after the first 128
 * regular files): the same results and the same refusals as the
 * single-threaded path, including entries that touch files a helper may
 * still be writing (overwrites, hard links, whiteouts, a directory replaced
 * by a symlink).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { applyLayer } from '../../src/engine/archive/apply-layer.js';

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; body?: string | Buffer; linkname?: string; mode?: number; uid?: number };

async function makeTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    const type = e.type ?? 'file';
    pack.entry(
      { name: e.name, type, linkname: e.linkname, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: 0, mtime: new Date(1_600_000_000_000) },
      type === 'file' ? (e.body ?? '') : '',
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Enough files to switch to helper threads, in several directories. */
function bulk(n: number): Entry[] {
  const out: Entry[] = [];
  for (let d = 0; d < 10; d++) out.push({ name: `bulk${d}/`, type: 'directory' });
  for (let i = 0; i < n; i++) out.push({ name: `bulk${i % 10}/f${i}`, body: `file ${i}\n`, mode: i % 7 === 0 ? 0o4755 : 0o644, uid: i % 5 === 0 ? 1000 : 0 });
  return out;
}

async function tmpRoot(): Promise<string> {
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), 'ppar-'));
  await fsp.mkdir(path.join(d, 'fs'));
  return path.join(d, 'fs');
}

test('helpers write the same files, modes, owners, times and contents; big files stream through', async () => {
  const big = crypto.randomBytes(5 << 20);
  const entries = [...bulk(400), { name: 'big/blob', body: big }, { name: 'bulk1/f1', body: 'overwritten\n' }, { name: 'hl', type: 'link' as const, linkname: 'bulk2/f2' }];
  const data = await makeTar(entries);
  const root = await tmpRoot();
  const r = await applyLayer(Readable.from([data]), root);
  assert.equal(r.diffID, `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`);
  for (const i of [0, 7, 35, 399]) {
    const p = path.join(root, `bulk${i % 10}/f${i}`);
    assert.equal(await fsp.readFile(p, 'utf8'), `file ${i}\n`);
    const st = await fsp.stat(p);
    assert.equal(st.mode & 0o7777, i % 7 === 0 ? 0o4755 : 0o644, `mode of f${i}`);
    assert.equal(st.uid, i % 5 === 0 ? 1000 : 0, `owner of f${i}`);
    assert.equal(Math.floor(st.mtimeMs / 1000), 1_600_000_000);
  }
  assert.ok((await fsp.readFile(path.join(root, 'big/blob'))).equals(big));
  assert.equal(await fsp.readFile(path.join(root, 'bulk1/f1'), 'utf8'), 'overwritten\n', 'a later entry replaces a file a helper wrote');
  assert.equal((await fsp.stat(path.join(root, 'hl'))).ino, (await fsp.stat(path.join(root, 'bulk2/f2'))).ino, 'a hard link to a helper-written file');
  await fsp.rm(path.dirname(root), { recursive: true });
});

test('a whiteout and a directory replaced by a symlink wait for the helpers; escapes are still refused', async () => {
  const ok = await makeTar([...bulk(300), { name: 'bulk3/.wh.f3', body: '' }, { name: 'bulk4', type: 'symlink', linkname: '/tmp' }]);
  const root = await tmpRoot();
  await applyLayer(Readable.from([ok]), root);
  assert.ok((await fsp.lstat(path.join(root, 'bulk3/f3'))).isCharacterDevice(), 'whiteout replaced the file');
  assert.equal(await fsp.readlink(path.join(root, 'bulk4')), '/tmp', 'the directory and its files were replaced by the symlink');
  await fsp.rm(path.dirname(root), { recursive: true });

  const hostile: Entry[][] = [
    [...bulk(300), { name: 'bulk5', type: 'symlink', linkname: '/tmp' }, { name: 'bulk5/escape-parallel', body: 'x' }],
    [...bulk(300), { name: '../escape-parallel', body: 'x' }],
    [...bulk(300), { name: 'out', type: 'link', linkname: '../../../etc/passwd' }],
  ];
  for (const entries of hostile) {
    const r2 = await tmpRoot();
    await assert.rejects(applyLayer(Readable.from([await makeTar(entries)]), r2), /invalid tar entry/);
    assert.ok(!fs.existsSync('/tmp/escape-parallel'));
    assert.ok(!fs.existsSync(path.join(path.dirname(r2), 'escape-parallel')));
    await fsp.rm(path.dirname(r2), { recursive: true });
  }
});

test('a truncated big layer fails cleanly with helpers running', async () => {
  const data = await makeTar(bulk(500));
  const root = await tmpRoot();
  await assert.rejects(applyLayer(Readable.from([data.subarray(0, Math.floor(data.length * 0.7))]), root), /invalid tar archive|Unexpected end/);
  await fsp.rm(path.dirname(root), { recursive: true });
});
