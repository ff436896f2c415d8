import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { native } from '../../src/engine/runtime/native.js';

function rssMB(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
}

test('mallocTrim hands back what a finished thread freed (glibc keeps it otherwise)', async () => {
  // a worker allocates many small native buffers (malloc, in its own arena); they are freed as it ends
  const worker = new Worker(
    `const keep = [];
     for (let i = 0; i < 120000; i++) keep.push(Buffer.allocUnsafeSlow(1000));
     keep.length = 0;`,
    { eval: true },
  );
  await new Promise((resolve, reject) => {
    worker.on('exit', resolve);
    worker.on('error', reject);
  });
  const before = rssMB();
  await native().mallocTrim();
  const after = rssMB();
  assert.ok(before - after > 20, `RSS ${before.toFixed(1)} -> ${after.toFixed(1)} MB`);
});
