import { test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ConmonRuntime, CreateError } from '../../src/engine/runtime/conmon.js';

test('conmon that exits at once (an unusable runtime) is a CreateError with its reason, not a crash', async () => {
  const dir = await fsp.mkdtemp('/tmp/bt-conmon-');
  try {
    const rt = new ConmonRuntime('/usr/bin/conmon', path.join(dir, 'no-such-runc'), path.join(dir, 'run'));
    await rt.init();
    const bundle = path.join(dir, 'bundle');
    await fsp.mkdir(bundle);
    const id = 'c'.repeat(64);
    await assert.rejects(
      rt.prepareCreate({ id, name: 'early-exit', bundle, logPath: '', logSizeMax: 0, terminal: false, stdin: false, stdinOnce: false }).go(),
      (err: Error) => err instanceof CreateError && /Runtime path .* is not valid|conmon exited/.test(err.message),
    );
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('a conmon abandoned before its start byte is killed: it does not go on to create the container', async () => {
  const dir = await fsp.mkdtemp('/tmp/bt-conmon-');
  try {
    const rt = new ConmonRuntime('/usr/bin/conmon', '/usr/sbin/runc', path.join(dir, 'run'));
    await rt.init();
    const bundle = path.join(dir, 'bundle');
    await fsp.mkdir(bundle);
    const id = 'd'.repeat(64);
    const pending = rt.prepareCreate({ id, name: 'abandoned', bundle, logPath: '', logSizeMax: 0, terminal: false, stdin: false, stdinOnce: false });
    await new Promise((r) => setTimeout(r, 50)); // conmon is up and waiting
    pending.abort();
    await assert.rejects(pending.go(), (err: Error) => err instanceof CreateError && /abandoned/.test(err.message));
    // had it read an end of file instead of dying, it would have forked and written its pid file
    await new Promise((r) => setTimeout(r, 300));
    await assert.rejects(fsp.access(path.join(bundle, 'conmon.pid')));
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('the runc conmon runs is a sealed copy, made again when the binary changes', async () => {
  const dir = await fsp.mkdtemp('/tmp/bt-conmon-');
  try {
    const runc = path.join(dir, 'runc');
    await fsp.copyFile('/usr/sbin/runc', runc);
    const rt = new ConmonRuntime('/usr/bin/conmon', runc, path.join(dir, 'run'));
    const first = rt.runtimeExecutable();
    assert.match(first, new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
    const fd = Number(first.split('/').pop());
    assert.equal(rt.runtimeExecutable(), first, 'the same copy while the file is unchanged');
    assert.deepEqual(await fsp.readFile(first), await fsp.readFile(runc));
    await fsp.appendFile(runc, Buffer.from('x'));
    const second = rt.runtimeExecutable();
    assert.notEqual(second, first);
    assert.equal((await fsp.stat(second)).size, (await fsp.stat(runc)).size);
    assert.ok(fd > 2);
    // a runc that cannot be copied: the path itself
    const missing = new ConmonRuntime('/usr/bin/conmon', path.join(dir, 'no-such-runc'), path.join(dir, 'run'));
    assert.equal(missing.runtimeExecutable(), path.join(dir, 'no-such-runc'));
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
