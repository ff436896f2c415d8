import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type LogHandover, followLogs, parseLogLine, readLogs, rotateLogs } from '../../src/engine/containers/logs.js';
import { removeTempFiles } from '../../src/util/atomic-file.js';

test('k8s-file lines parse into Docker log entries', () => {
  const e = parseLogLine(Buffer.from('2024-01-02T03:04:05.120000000+00:00 stderr F oops'))!;
  assert.equal(e.stream, 2);
  assert.equal(e.time, '2024-01-02T03:04:05.12Z');
  assert.equal(e.data.toString(), 'oops\n');
  const p = parseLogLine(Buffer.from('2024-01-02T03:04:05.000000001+00:00 stdout P part'))!;
  assert.equal(p.data.toString(), 'part');
  assert.equal(p.time, '2024-01-02T03:04:05.000000001Z');
  assert.equal(parseLogLine(Buffer.from('garbage')), undefined);
});

test('rotation keeps the replaced file and reading spans all files in order', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'logs-'));
  const line = (n: number): string => `2024-01-02T03:04:0${n}.000000000+00:00 stdout F line${n}\n`;
  await fsp.writeFile(path.join(dir, 'ctr.log'), line(1));
  rotateLogs(dir, 3); // links ctr.log.cur
  // conmon replaces the file when it is full
  await fsp.writeFile(path.join(dir, 'ctr.log.tmp'), line(2));
  await fsp.rename(path.join(dir, 'ctr.log.tmp'), path.join(dir, 'ctr.log'));
  rotateLogs(dir, 3);
  await fsp.writeFile(path.join(dir, 'ctr.log.tmp'), line(3));
  await fsp.rename(path.join(dir, 'ctr.log.tmp'), path.join(dir, 'ctr.log'));
  const all = await readLogs(dir, 3, { stdout: true, stderr: true, tail: -1, follow: false });
  assert.deepEqual(all.map((e) => e.data.toString()), ['line1\n', 'line2\n', 'line3\n']);
  rotateLogs(dir, 3);
  await fsp.writeFile(path.join(dir, 'ctr.log.tmp'), line(4));
  await fsp.rename(path.join(dir, 'ctr.log.tmp'), path.join(dir, 'ctr.log'));
  rotateLogs(dir, 3);
  const kept = await readLogs(dir, 3, { stdout: true, stderr: true, tail: -1, follow: false });
  assert.deepEqual(kept.map((e) => e.data.toString()), ['line2\n', 'line3\n', 'line4\n'], 'max-file 3 keeps three files');
  const tail = await readLogs(dir, 3, { stdout: true, stderr: true, tail: 1, follow: false });
  assert.deepEqual(tail.map((e) => e.data.toString()), ['line4\n']);
  // the file that dropped out is deleted in the background; one a crash left is swept
  // with the store's other leftovers when the records load
  for (let i = 0; i < 50 && (await fsp.readdir(dir)).some((n) => n.includes('discarded')); i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual((await fsp.readdir(dir)).sort(), ['ctr.log', 'ctr.log.1', 'ctr.log.2', 'ctr.log.cur']);
  const crashLeftover = `.tmp-ctr.log.discarded-0000`;
  await fsp.writeFile(path.join(dir, crashLeftover), 'x');
  await removeTempFiles(dir);
  assert.ok(!(await fsp.readdir(dir)).includes(crashLeftover));
  await fsp.rm(dir, { recursive: true });
});

test('follow goes on where the read stopped: output written in between is neither lost nor repeated', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'logs-'));
  const line = (n: number): string => `2024-01-02T03:04:0${n}.000000000+00:00 stdout F line${n}\n`;
  const q = { stdout: true, stderr: true, tail: -1, follow: true };
  const follow = async (from: { at?: { ino: number; offset: number } }): Promise<string[]> => {
    const got: string[] = [];
    // isDone at once: the container has exited, follow drains what is there
    await followLogs(dir, q, (e) => void got.push(e.data.toString()), () => true, new AbortController().signal, from);
    return got;
  };
  // a partial record at the end is left for the follow
  await fsp.writeFile(path.join(dir, 'ctr.log'), line(1) + line(2).slice(0, 20));
  const position = {};
  const read = await readLogs(dir, 3, q, position);
  assert.deepEqual(read.map((e) => e.data.toString()), ['line1\n']);
  // the container writes between the read and the start of the follow (docker-py's run(stream=True))
  await fsp.appendFile(path.join(dir, 'ctr.log'), line(2).slice(20) + line(3));
  assert.deepEqual(await follow(position), ['line2\n', 'line3\n']);
  // no ctr.log when read: the follow starts at its beginning
  await fsp.rm(path.join(dir, 'ctr.log'));
  const none = {};
  assert.deepEqual(await readLogs(dir, 3, q, none), []);
  await fsp.writeFile(path.join(dir, 'ctr.log'), line(4));
  assert.deepEqual(await follow(none), ['line4\n']);
  await fsp.rm(dir, { recursive: true });
});

test('follow reads once more after the container stopped: its last output is not lost', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'logs-'));
  const file = path.join(dir, 'ctr.log');
  await fsp.writeFile(file, '');
  const q = { stdout: true, stderr: true, tail: -1, follow: true };
  const got: string[] = [];
  // the container is running at the first check; its last line and its exit land
  // between the follow's read at the end of the file and its next check (docker-py's
  // run: `echo hi`, then logs(follow=True), then wait)
  let checks = 0;
  const isDone = (): boolean => {
    checks++;
    if (checks === 2) fs.appendFileSync(file, '2024-01-02T03:04:05.000000000+00:00 stdout F hi\n');
    return checks >= 2;
  };
  await followLogs(dir, q, (e) => void got.push(e.data.toString()), isDone, new AbortController().signal, {});
  assert.deepEqual(got, ['hi\n']);
  await fsp.rm(dir, { recursive: true });
});

test('follow reads the file readLogs opened: a container removed in between (docker-py run(remove=True)) loses nothing', async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'logs-'));
  const dir = path.join(root, 'ctr');
  await fsp.mkdir(dir);
  const line = (n: number): string => `2024-01-02T03:04:0${n}.000000000+00:00 stdout F line${n}\n`;
  for (const tail of [-1, 0]) {
    await fsp.writeFile(path.join(dir, 'ctr.log'), line(1));
    const q = { stdout: true, stderr: true, tail, follow: true };
    const handover: LogHandover = {};
    const read = await readLogs(dir, 3, q, handover);
    assert.deepEqual(read.map((e) => e.data.toString()), tail === 0 ? [] : ['line1\n']);
    assert.ok(handover.handle, 'the live file is handed over open');
    // the container writes its last line and exits; its directory is renamed away (removal)
    await fsp.appendFile(path.join(dir, 'ctr.log'), line(2));
    await fsp.rename(dir, path.join(root, 'removed'));
    const got: string[] = [];
    await followLogs(dir, q, (e) => void got.push(e.data.toString()), () => true, new AbortController().signal, handover);
    assert.deepEqual(got, ['line2\n']);
    await fsp.rename(path.join(root, 'removed'), dir);
  }
  await fsp.rm(root, { recursive: true });
});
