import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/util/proc.js';

test('run: input for a command that exits without reading it is no error (EPIPE is not thrown)', async () => {
  const r = await run('sh', ['-c', 'exit 3'], { input: Buffer.alloc(4 << 20) });
  assert.equal(r.code, 3);
});

test('run: input reaches the command', async () => {
  const r = await run('cat', [], { input: 'hello' });
  assert.equal(r.stdout, 'hello');
});
