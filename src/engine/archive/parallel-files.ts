/**
 * Regular files of a layer written by helper threads, from the unpack
 * worker. Creating a file costs the kernel far more than writing its bytes
 * (openat dominates a 10k-file layer, for tar -x as for us), and that cost
 * is per CPU: two threads creating files in parallel take about half the
 * time. The unpack worker keeps everything that needs order or judgement
 * (parsing, containment, directories, links, whiteouts) and hands each
 * regular file — create, data, owner, mode, times, xattrs — to one helper,
 * in order per helper (file-writer-worker.ts).
 *
 * The unpack worker is synchronous, so waiting is too: helpers count the
 * files and bytes they finished in shared memory and the worker waits with
 * Atomics.wait for a barrier (before touching a path a helper may still be
 * writing, and at the end) or when too many bytes are in flight. A helper's
 * error is written to shared memory and raised at the next wait.
 */
import { Worker } from 'node:worker_threads';
import type { TarHeader } from './tar-reader.js';

export type FileOp =
  | { t: 'b'; path: string; mode: number }
  | { t: 'd'; bytes: Uint8Array }
  | { t: 'e'; uid: number; gid: number; mode: number; mtime: number; chown: boolean; chmod: boolean; xattrs: [string, Uint8Array][] };

/** A helper's first message for each layer: its slot and the layer's shared counters. */
export interface FileWriterStart {
  t: 'start';
  index: number;
  shared: SharedArrayBuffer;
  helpers: number;
}

const ERROR_TEXT = 4096;
/** Bytes handed to helpers and not yet written, before the worker waits. */
const MAX_IN_FLIGHT = 32 << 20;
/** A helper's queue is posted once it holds this much. */
const FLUSH_BYTES = 256 << 10;
const FLUSH_OPS = 96;
const WORKER_URL = new URL('./file-writer-worker.js', import.meta.url);
/**
 * Helpers that finished a layer cleanly, kept for the next layer of this
 * unpack worker: a new thread costs ~40 ms of CPU. They end with the unpack
 * worker (pooled for a few seconds by apply-layer.ts). A helper of a layer
 * that failed is terminated, never reused.
 */
const idleHelpers: Worker[] = [];

/** Layout of the shared memory: files done per helper, bytes done, error flag, error text. */
export function sharedViews(shared: SharedArrayBuffer, helpers: number): { done: Int32Array; bytes: BigInt64Array; error: Int32Array; text: Uint8Array } {
  const bytesOffset = Math.ceil((helpers * 4) / 8) * 8;
  return {
    done: new Int32Array(shared, 0, helpers),
    bytes: new BigInt64Array(shared, bytesOffset, 1),
    error: new Int32Array(shared, bytesOffset + 8, 1),
    text: new Uint8Array(shared, bytesOffset + 16, ERROR_TEXT),
  };
}

export class ParallelFiles {
  private readonly workers: Worker[] = [];
  private readonly views: ReturnType<typeof sharedViews>;
  private readonly sent: number[];
  private readonly queues: { ops: FileOp[]; transfer: ArrayBuffer[]; bytes: number }[];
  private bytesSent = 0;
  private current = -1;
  private currentDir = '';

  constructor(private readonly helpers: number) {
    const shared = new SharedArrayBuffer(Math.ceil((helpers * 4) / 8) * 8 + 16 + ERROR_TEXT);
    this.views = sharedViews(shared, helpers);
    this.sent = new Array<number>(helpers).fill(0);
    this.queues = Array.from({ length: helpers }, () => ({ ops: [], transfer: [], bytes: 0 }));
    for (let index = 0; index < helpers; index++) {
      let w = idleHelpers.pop();
      if (!w) {
        w = new Worker(WORKER_URL);
        w.unref();
      }
      const start: FileWriterStart = { t: 'start', index, shared, helpers };
      w.postMessage(start);
      this.workers.push(w);
    }
  }

  private push(op: FileOp, bytes = 0, transfer?: ArrayBuffer): void {
    const q = this.queues[this.current];
    q.ops.push(op);
    if (transfer) q.transfer.push(transfer);
    q.bytes += bytes;
  }

  private flush(k: number): void {
    const q = this.queues[k];
    if (q.ops.length === 0) return;
    this.workers[k].postMessage(q.ops, q.transfer);
    this.queues[k] = { ops: [], transfer: [], bytes: 0 };
  }

  private flushAll(): void {
    for (let k = 0; k < this.helpers; k++) this.flush(k);
  }

  begin(path: string, mode: number): void {
    // Files of one directory go to one helper: creating in a directory takes its lock, so two
    // helpers in the same directory would mostly wait for each other. A new directory goes to
    // the helper with the fewest unfinished files.
    const dir = path.slice(0, path.lastIndexOf('/'));
    if (dir !== this.currentDir || this.current < 0) {
      let best = 0;
      let bestLoad = Infinity;
      for (let k = 0; k < this.helpers; k++) {
        const load = this.sent[k] - Atomics.load(this.views.done, k) + this.queues[k].ops.length;
        if (load < bestLoad) {
          best = k;
          bestLoad = load;
        }
      }
      this.current = best;
      this.currentDir = dir;
    }
    this.push({ t: 'b', path, mode });
  }

  data(bytes: Buffer): void {
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    this.push({ t: 'd', bytes: copy }, copy.length, copy.buffer);
    this.bytesSent += copy.length;
    if (this.queues[this.current].bytes >= FLUSH_BYTES) this.flush(this.current);
    if (this.bytesSent - Number(Atomics.load(this.views.bytes, 0)) > MAX_IN_FLIGHT) this.waitForBytes();
  }

  end(header: TarHeader, chown: boolean, chmod: boolean): void {
    const xattrs: [string, Uint8Array][] = [...header.xattrs].map(([k, v]) => [k, new Uint8Array(v)]);
    this.push({ t: 'e', uid: header.uid, gid: header.gid, mode: header.mode & 0o7777, mtime: header.mtime, chown, chmod, xattrs });
    this.sent[this.current]++;
    const q = this.queues[this.current];
    if (q.ops.length >= FLUSH_OPS || q.bytes >= FLUSH_BYTES) this.flush(this.current);
  }

  private checkError(): void {
    if (Atomics.load(this.views.error, 0) === 0) return;
    const end = this.views.text.indexOf(0);
    throw new Error(Buffer.from(this.views.text.slice(0, end < 0 ? undefined : end)).toString('utf8') || 'a file writer failed');
  }

  private waitForBytes(): void {
    this.flushAll();
    for (;;) {
      this.checkError();
      const done = Atomics.load(this.views.bytes, 0);
      if (this.bytesSent - Number(done) <= MAX_IN_FLIGHT / 2) return;
      Atomics.wait(this.views.bytes, 0, done, 50);
    }
  }

  /** Returns once every file handed out so far is written; raises a helper's error. */
  barrier(): void {
    this.flushAll();
    for (let k = 0; k < this.helpers; k++) {
      for (;;) {
        this.checkError();
        const done = Atomics.load(this.views.done, k);
        if (done >= this.sent[k]) break;
        Atomics.wait(this.views.done, k, done, 50);
      }
    }
    this.checkError();
  }

  /** Lets the helpers go: back to the pool after a clean barrier(), terminated otherwise. */
  close(reuse = false): void {
    for (const w of this.workers.splice(0)) {
      if (reuse && idleHelpers.length < this.helpers) idleHelpers.push(w);
      else void w.terminate();
    }
  }
}
