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
      rt.create({ id, name: 'early-exit', bundle, logPath: '', logSizeMax: 0, terminal: false, stdin: false, stdinOnce: false }),
      (err: Error) => err instanceof CreateError && /Runtime path .* is not valid|conmon exited/.test(err.message),
    );
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
