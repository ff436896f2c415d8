import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../../src/util/atomic-file.js';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'bt-atomic-'));
  t.after(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

test('writeFileAtomic: writes the content with the mode asked, replaces an existing file, leaves no temporary', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'state.json');
  await writeFileAtomic(file, 'first', 0o640);
  assert.equal(await fsp.readFile(file, 'utf8'), 'first');
  assert.equal((await fsp.stat(file)).mode & 0o777, 0o640 & ~process.umask());
  const inode = (await fsp.stat(file)).ino;
  await writeJsonAtomic(file, { second: true });
  assert.deepEqual(JSON.parse(await fsp.readFile(file, 'utf8')), { second: true });
  assert.notEqual((await fsp.stat(file)).ino, inode, 'a new file renamed over the old, never rewritten in place');
  // bytes from a view into a larger buffer: only the view is written
  const big = Buffer.from('xxhello worldxx');
  await writeFileAtomic(file, new Uint8Array(big.buffer, big.byteOffset + 2, 11));
  assert.equal(await fsp.readFile(file, 'utf8'), 'hello world');
  assert.deepEqual(await fsp.readdir(dir), ['state.json']);
});

test('writeFileAtomic: a failure is an error with its code and leaves nothing behind', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(writeFileAtomic(path.join(dir, 'missing', 'f'), 'x'), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
  // the rename fails (a non-empty directory is in the way): the temporary file goes
  fs.mkdirSync(path.join(dir, 'taken'));
  fs.writeFileSync(path.join(dir, 'taken', 'inside'), '');
  await assert.rejects(writeFileAtomic(path.join(dir, 'taken'), 'x'), (err: NodeJS.ErrnoException) => err.code === 'EISDIR');
  assert.deepEqual(await fsp.readdir(dir), ['taken']);
  assert.deepEqual(await fsp.readdir(path.join(dir, 'taken')), ['inside']);
});
