import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OverlaySnapshotter } from '../../src/engine/snapshots/overlay.js';
import { native } from '../../src/engine/runtime/native.js';

const TOPDIR_FL = 0x00020000;

/** The inode flags as lsattr prints them: 'T' is FS_TOPDIR_FL. */
function hasTopdir(dir: string): boolean {
  const flags = execFileSync('lsattr', ['-d', dir]).toString().split(' ')[0];
  return flags.includes('T');
}

test('drafts/ carries the top-directory flag where the filesystem has it', async (t) => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-placement-'));
  try {
    const probe = path.join(root, 'probe');
    await fsp.mkdir(probe);
    if (!native().setTopdir(probe)) {
      t.skip(`${os.tmpdir()} has no FS_TOPDIR_FL (0x${TOPDIR_FL.toString(16)})`);
      return;
    }
    const snapshots = new OverlaySnapshotter(path.join(root, 'snapshots'));
    await snapshots.init();
    assert.ok(hasTopdir(path.join(root, 'snapshots', 'drafts')));
    assert.ok(!hasTopdir(path.join(root, 'snapshots', 'active')));
    assert.ok(!hasTopdir(path.join(root, 'snapshots', 'layers')));
    // already set: still true, nothing changes
    assert.equal(native().setTopdir(probe), true);
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
});

test('setTopdir is false on a filesystem without the flag, and refuses what is not a directory', async () => {
  assert.equal(native().setTopdir('/dev/shm'), false);
  assert.throws(() => native().setTopdir('/etc/hostname'), { code: 'ENOTDIR' });
  assert.throws(() => native().setTopdir('/nonexistent-berth-dir'), { code: 'ENOENT' });
});
