import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { applyLayer } from '../../src/engine/archive/apply-layer.js';
import { packLayer } from '../../src/engine/archive/pack-layer.js';
import { native } from '../../src/engine/runtime/native.js';

async function entries(root: string, options: Parameters<typeof packLayer>[1] = {}): Promise<{ name: string; type: string; linkname?: string }[]> {
  const out: { name: string; type: string; linkname?: string }[] = [];
  const extract = tar.extract();
  extract.on('entry', (h, stream, next) => {
    out.push({ name: h.name, type: h.type ?? 'file', ...(h.linkname ? { linkname: h.linkname } : {}) });
    stream.resume();
    stream.on('end', next);
  });
  const done = new Promise<void>((resolve, reject) => {
    extract.on('finish', () => resolve());
    extract.on('error', reject);
  });
  packLayer(root, options).pipe(extract);
  await done;
  return out;
}

test('an upper dir packs into a layer tar: whiteouts, opaque dirs, links; applying it gives the same tree', async () => {
  const upper = await fsp.mkdtemp(path.join(os.tmpdir(), 'bt-pack-'));
  const applied = await fsp.mkdtemp(path.join(os.tmpdir(), 'bt-pack-out-'));
  try {
    await fsp.mkdir(path.join(upper, 'etc'));
    await fsp.writeFile(path.join(upper, 'etc', 'hosts'), '');
    await fsp.mkdir(path.join(upper, 'data', 'sub'), { recursive: true });
    await fsp.writeFile(path.join(upper, 'data', 'sub', 'f'), 'content');
    await fsp.link(path.join(upper, 'data', 'sub', 'f'), path.join(upper, 'data', 'hard'));
    await fsp.symlink('/data/sub/f', path.join(upper, 'link'));
    native().mknod(path.join(upper, 'data', 'gone'), 0o020000, 0, 0); // overlay whiteout: 0:0 char device
    await fsp.mkdir(path.join(upper, 'opaque'));
    native().lsetxattr(path.join(upper, 'opaque'), 'trusted.overlay.opaque', Buffer.from('y'));

    const list = await entries(upper, { exclude: (rel) => rel === 'etc/hosts', omitIfEmpty: (rel) => rel === 'etc' });
    assert.deepEqual(
      list.map((e) => e.name),
      ['data/', 'data/.wh.gone', 'data/hard', 'data/sub/', 'data/sub/f', 'link', 'opaque/', 'opaque/.wh..wh..opq'],
      'etc/ only held an excluded mount point',
    );
    assert.equal(list.find((e) => e.name === 'data/sub/f')?.type, 'link', 'the second name of an inode is a hard link');
    assert.equal(list.find((e) => e.name === 'link')?.linkname, '/data/sub/f');

    const result = await applyLayer(packLayer(upper, { exclude: (rel) => rel === 'etc/hosts' }), applied);
    assert.match(result.diffID, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await fsp.readFile(path.join(applied, 'data', 'sub', 'f'), 'utf8'), 'content');
    assert.equal(fs.statSync(path.join(applied, 'data', 'hard')).ino, fs.statSync(path.join(applied, 'data', 'sub', 'f')).ino);
    const wh = fs.lstatSync(path.join(applied, 'data', 'gone'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'the whiteout is back in overlay form');
    assert.equal(native().lgetxattr(path.join(applied, 'opaque'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.ok(fs.existsSync(path.join(applied, 'etc')) && !fs.existsSync(path.join(applied, 'etc', 'hosts')));
  } finally {
    await fsp.rm(upper, { recursive: true, force: true });
    await fsp.rm(applied, { recursive: true, force: true });
  }
});

test('an empty upper dir is the empty layer', async () => {
  const upper = await fsp.mkdtemp(path.join(os.tmpdir(), 'bt-pack-'));
  const applied = await fsp.mkdtemp(path.join(os.tmpdir(), 'bt-pack-out-'));
  try {
    const result = await applyLayer(packLayer(upper), applied);
    assert.equal(result.diffID, 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef');
  } finally {
    await fsp.rm(upper, { recursive: true, force: true });
    await fsp.rm(applied, { recursive: true, force: true });
  }
});
