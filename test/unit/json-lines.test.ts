import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forEachJsonLine } from '../../src/client/json-lines.js';

async function* chunks(...parts: Buffer[]): AsyncGenerator<Buffer> {
  yield* parts;
}

test('JSON lines: values split across chunks, a character split between chunks, blank lines, no final newline', async () => {
  const text = Buffer.from('{"stream":"Step 1/2 : FROM busybox\\n"}\n\n{"status":"héllo ✓"}\n  \n{"aux":{"ID":"sha256:1"}}');
  const at = text.indexOf(Buffer.from('✓')) + 1; // inside the 3-byte character
  const seen: unknown[] = [];
  await forEachJsonLine(chunks(text.subarray(0, 10), text.subarray(10, at), text.subarray(at)), (v) => seen.push(v));
  assert.deepEqual(seen, [{ stream: 'Step 1/2 : FROM busybox\n' }, { status: 'héllo ✓' }, { aux: { ID: 'sha256:1' } }]);
});

test('JSON lines: a line that is not JSON is an error', async () => {
  await assert.rejects(forEachJsonLine(chunks(Buffer.from('{"a":1}\nnot json\n')), () => {}), SyntaxError);
});
