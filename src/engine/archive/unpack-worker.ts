/**
 * The unpack worker thread: receives a layer's plain tar bytes in batches,
 * hashes them (the diffID), parses them (TarReader) and writes the files with
 * synchronous system calls (SyncLayerWriter). Sync calls in a worker cost a
 * system call each; the same calls through libuv's pool from the main
 * thread cost a round trip each, which dominated unpacking 10k-file layers.
 *
 * Workers are pooled (apply-layer.ts): starting one costs ~45 ms of CPU,
 * per layer before. Protocol (parent -> worker): {type:'begin', root, umask},
 * {type:'data', bytes}, {type:'end'}.
 * (worker -> parent): {type:'ack', bytes}, {type:'done', diffID, size, tarSize},
 * {type:'error', message, invalid}.
 */
import crypto from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { TarFormatError, TarReader } from './tar-reader.js';
import { InvalidEntryError, SyncLayerWriter } from './layer-writer.js';

export type ToWorker = { type: 'begin'; root: string; umask: number } | { type: 'data'; bytes: Uint8Array } | { type: 'end' };
export type FromWorker =
  | { type: 'ack'; bytes: number }
  | { type: 'done'; diffID: string; size: number; tarSize: number }
  | { type: 'error'; message: string; invalid: boolean };

const port = parentPort!;

/** One layer: the worker is reused for the next after 'done' (never after an error). */
class Job {
  readonly hash = crypto.createHash('sha256');
  readonly writer: SyncLayerWriter;
  readonly reader: TarReader;
  tarSize = 0;
  failed = false;

  constructor(root: string, umask: number) {
    this.writer = new SyncLayerWriter(root, umask);
    this.reader = new TarReader(this.writer);
  }

  fail(err: unknown): void {
    this.failed = true;
    this.writer.abort();
    const invalid = err instanceof InvalidEntryError || err instanceof TarFormatError;
    let message = err instanceof Error ? err.message : String(err);
    if (err instanceof TarFormatError) message = message === 'the archive is empty' ? 'invalid tar: the archive is empty' : `invalid tar archive: ${message}`;
    const reply: FromWorker = { type: 'error', message, invalid };
    port.postMessage(reply);
  }
}

let job: Job | null = null;

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'begin') {
    job = new Job(msg.root, msg.umask);
    return;
  }
  const j = job;
  if (!j || j.failed) return;
  try {
    if (msg.type === 'data') {
      const buf = Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.bytes.byteLength);
      j.hash.update(buf);
      j.tarSize += buf.length;
      j.reader.write(buf);
      const ack: FromWorker = { type: 'ack', bytes: buf.length };
      port.postMessage(ack);
    } else {
      j.reader.end();
      j.writer.finish();
      job = null;
      const done: FromWorker = { type: 'done', diffID: `sha256:${j.hash.digest('hex')}`, size: j.writer.size, tarSize: j.tarSize };
      port.postMessage(done);
    }
  } catch (err) {
    j.fail(err);
  }
});
