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
import { native } from '../../src/engine/runtime/native.js';

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; body?: string; linkname?: string; mode?: number; uid?: number };

async function makeTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) =>
      pack.entry(
        { name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: 0, mtime: new Date(1_700_000_000_000) },
        e.type === 'file' || !e.type ? (e.body ?? '') : '',
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function tmpdir(): Promise<string> {
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), 'layer-'));
  const root = path.join(d, 'fs');
  await fsp.mkdir(root);
  return root;
}

test('unpacks files, links and whiteouts in overlay form; diffID is the tar digest', async () => {
  const data = await makeTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/hello', body: 'hi\n', mode: 0o640, uid: 33 },
    { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' },
    { name: 'etc/hello2', type: 'link', linkname: 'etc/hello' },
    { name: 'var/.wh.gone', body: '' },
    { name: 'opt/.wh..wh..opq', body: '' },
  ]);
  const root = await tmpdir();
  const r = await applyLayer(Readable.from([data]), root);
  assert.equal(r.diffID, `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`);
  assert.equal(await fsp.readFile(path.join(root, 'etc/hello'), 'utf8'), 'hi\n');
  const st = await fsp.stat(path.join(root, 'etc/hello'));
  assert.equal(st.mode & 0o7777, 0o640);
  assert.equal(st.uid, 33);
  assert.equal(st.nlink, 2);
  assert.equal(await fsp.readlink(path.join(root, 'bin/sh')), '/bin/busybox');
  const wh = await fsp.lstat(path.join(root, 'var/gone'));
  assert.ok(wh.isCharacterDevice());
  assert.equal(wh.rdev, 0);
  assert.equal(native().lgetxattr(path.join(root, 'opt'), 'trusted.overlay.opaque')?.toString(), 'y');
  await fsp.rm(path.dirname(root), { recursive: true });
});

const hostile: [string, Entry[]][] = [
  ['a ../ path', [{ name: '../escape-dotdot', body: 'x' }]],
  ['a deep ../ path', [{ name: 'a/../../escape-deep', body: 'x' }]],
  ['a write through an absolute symlink', [{ name: 'link', type: 'symlink', linkname: '/tmp' }, { name: 'link/escape-abs', body: 'x' }]],
  ['a write through a relative symlink', [{ name: 'up', type: 'symlink', linkname: '../../..' }, { name: 'up/tmp/escape-rel', body: 'x' }]],
  ['a hard link out of the layer', [{ name: 'pw', type: 'link', linkname: '../../../etc/passwd' }]],
  ['a hard link through a symlink', [{ name: 'l', type: 'symlink', linkname: '/etc' }, { name: 'pw', type: 'link', linkname: 'l/passwd' }]],
  ['a directory replaced by a symlink, then written through', [{ name: 'd/', type: 'directory' }, { name: 'd', type: 'symlink', linkname: '/tmp' }, { name: 'd/escape-replaced', body: 'x' }]],
];

for (const [what, entries] of hostile) {
  test(`refuses ${what} and writes nothing outside`, async () => {
    const root = await tmpdir();
    const before = new Set(await fsp.readdir('/tmp'));
    await assert.rejects(applyLayer(Readable.from([await makeTar(entries)]), root), /invalid tar entry/);
    for (const name of ['escape-dotdot', 'escape-deep', 'escape-abs', 'escape-rel', 'escape-replaced']) {
      assert.ok(!fs.existsSync(path.join('/tmp', name)) || before.has(name), `${name} leaked`);
      assert.ok(!fs.existsSync(path.join(path.dirname(root), name)), `${name} leaked beside the layer`);
    }
    await fsp.rm(path.dirname(root), { recursive: true });
  });
}

test('absolute entry names stay inside the layer', async () => {
  const root = await tmpdir();
  await applyLayer(Readable.from([await makeTar([{ name: '/etc/abs-inside', body: 'x' }])]), root);
  assert.equal(await fsp.readFile(path.join(root, 'etc/abs-inside'), 'utf8'), 'x');
  await fsp.rm(path.dirname(root), { recursive: true });
});

test('truncated and non-tar input fail clearly', async () => {
  const good = await makeTar([{ name: 'big', body: 'y'.repeat(100_000) }]);
  const root = await tmpdir();
  await assert.rejects(applyLayer(Readable.from([good.subarray(0, 50_000)]), root), /invalid tar archive|Unexpected end/);
  const root2 = await tmpdir();
  await assert.rejects(applyLayer(Readable.from([crypto.randomBytes(4096)]), root2), /invalid tar/);
  const root3 = await tmpdir();
  await assert.rejects(applyLayer(Readable.from([]), root3), /empty/);
  for (const r of [root, root2, root3]) await fsp.rm(path.dirname(r), { recursive: true });
});
