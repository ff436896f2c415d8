import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runHelper } from '../../src/engine/runtime/helper.js';

test('runHelper: output, input, exit code, environment and signals, like child_process', async () => {
  const r = await runHelper('/bin/sh', ['-c', 'read x; echo "out $x"; echo "err $V" >&2; exit 3'], { input: 'in\n', env: { V: 'v' } });
  assert.deepEqual(r, { code: 3, signal: null, stdout: 'out in\n', stderr: 'err v\n' });
  const killed = await runHelper('/bin/sh', ['-c', 'kill -TERM $$']);
  assert.equal(killed.signal, 'SIGTERM');
  assert.ok(killed.code < 0);
  // a child that never reads its input: no EPIPE escapes
  const big = await runHelper('/bin/true', [], { input: Buffer.alloc(1 << 20) });
  assert.equal(big.code, 0);
  // output larger than a pipe's buffer is read while the child writes it
  const long = await runHelper('/bin/sh', ['-c', 'head -c 300000 /dev/zero']);
  assert.equal(long.stdout.length, 300000);
  await assert.rejects(runHelper('/nonexistent/helper', []), /ENOENT|posix_spawn/);
});
