import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { native, unmountDetached } from '../../src/engine/runtime/native.js';

function mounted(dir: string): boolean {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === dir);
}

test('unmountDetached: the mount is gone when the call returns; the promise tells whether there was one', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'bt-umount-'));
  t.after(() => fsp.rm(dir, { recursive: true, force: true }));
  const target = path.join(dir, 'mnt');
  fs.mkdirSync(target);
  native().mount('tmpfs', target, 'tmpfs', 0, 'size=1m');
  fs.writeFileSync(path.join(target, 'inside'), 'x');
  assert.ok(mounted(target));

  const released = unmountDetached(target);
  assert.ok(!mounted(target), 'detached before the promise settles');
  assert.deepEqual(fs.readdirSync(target), [], 'the directory underneath shows again');
  assert.equal(await released, true);

  assert.equal(await unmountDetached(target), false, 'a plain directory: nothing to unmount');
  assert.equal(await unmountDetached(path.join(dir, 'missing')), false);
});
