/**
 * Layer unpacking from the main thread's side: LayerUnpacker is a Writable
 * that takes a layer's plain tar stream and hands it, in 1 MiB batches, to
 * an unpack worker (unpack-worker.ts) that hashes it (the diffID), checks
 * containment and writes the files into a fresh directory with overlayfs
 * whiteouts. applyLayer() is the one-call form for a Readable.
 *
 * Containment rules live in layer-writer.ts. On any error the caller
 * discards the whole directory.
 */
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import type { Digest } from '../../core/images/digest.js';
import { invalidArgument } from '../../core/errdefs/index.js';
import type { FromWorker, ToWorker } from './unpack-worker.js';
import { native } from '../runtime/native.js';

export { cleanEntryPath, WHITEOUT_PREFIX, OPAQUE_WHITEOUT, OVERLAY_OPAQUE_XATTR } from './layer-writer.js';

export interface ApplyResult {
  diffID: Digest;
  /** Bytes of regular file content written. */
  size: number;
  /** Bytes of tar stream consumed. */
  tarSize: number;
}

export interface ApplyOptions {
  signal?: AbortSignal;
  /** Called with the number of tar bytes consumed so far (for progress). */
  onProgress?: (tarBytes: number) => void;
}

const BATCH = 1 << 20;
/** Bytes handed to the worker but not yet written, before we stop accepting more. */
const MAX_IN_FLIGHT = 8 << 20;
const WORKER_URL = new URL('./unpack-worker.js', import.meta.url);
/**
 * Tar bytes between background syncfs calls while unpacking: the writeback then overlaps the
 * unpacking instead of all of it waiting for the commit's own syncfs: for a 200 MB Debian layer the
 * pull's blob fsync + layer syncfs went from ~0.25 s to ~10 ms, the whole pull ~0.15 s faster.
 */
const WRITEBACK_EVERY = 32 << 20;

/** The process umask, read once when the module loads (at daemon start): reading it means setting it back. */
const UMASK = ((): number => {
  const value = process.umask(0o022);
  process.umask(value);
  return value;
})();

/**
 * Idle unpack workers, kept for the next layer (a new worker costs ~45 ms of
 * CPU) for a few seconds only: a worker holds ~6 MB, and an idle daemon
 * should not (issue 2's idle RSS target).
 */
const idleWorkers = new Map<Worker, NodeJS.Timeout>();
const MAX_IDLE_WORKERS = 2;
const IDLE_WORKER_MS = 5_000;

/** Our listeners only: Worker keeps internal 'newListener'/'removeListener' hooks that start its port. */
function dropListeners(worker: Worker): void {
  for (const event of ['message', 'error', 'exit']) worker.removeAllListeners(event);
}

function takeWorker(): Worker {
  for (const [idle, timer] of idleWorkers) {
    clearTimeout(timer);
    idleWorkers.delete(idle);
    dropListeners(idle);
    idle.ref();
    return idle;
  }
  return new Worker(WORKER_URL);
}

/** Back to the pool after a layer it finished; a worker that failed or was stopped is never reused. */
function releaseWorker(worker: Worker): void {
  dropListeners(worker);
  if (idleWorkers.size >= MAX_IDLE_WORKERS) {
    void worker.terminate();
    return;
  }
  worker.unref();
  worker.on('error', () => {});
  worker.once('exit', () => {
    clearTimeout(idleWorkers.get(worker));
    idleWorkers.delete(worker);
  });
  const timer = setTimeout(() => void worker.terminate(), IDLE_WORKER_MS);
  timer.unref();
  idleWorkers.set(worker, timer);
}

/** A Writable of plain tar bytes; `result` settles once the worker wrote everything. */
export class LayerUnpacker extends Writable {
  readonly result: Promise<ApplyResult>;
  /** Settles once the worker (and its file writers) exited or finished: nothing writes into the directory after it. */
  readonly exited: Promise<void>;
  private readonly worker: Worker;
  /** False once the worker went back to the pool: it may be another layer's by now. */
  private ownsWorker = true;
  private markExited!: () => void;
  private batch = new Uint8Array(BATCH);
  private batchLength = 0;
  private inFlight = 0;
  private consumed = 0;
  private waiting: (() => void) | null = null;
  private writeback: Promise<void> | null = null;
  private writebackAt = WRITEBACK_EVERY;
  private failure: Error | null = null;
  private settled = false;
  private settle!: { resolve: (r: ApplyResult) => void; reject: (e: Error) => void };

  constructor(
    private readonly root: string,
    private readonly options: ApplyOptions = {},
  ) {
    super({ highWaterMark: BATCH });
    this.result = new Promise<ApplyResult>((resolve, reject) => (this.settle = { resolve, reject }));
    this.result.catch(() => {}); // observed by whoever awaits it
    this.worker = takeWorker();
    this.exited = new Promise<void>((resolve) => (this.markExited = resolve));
    this.worker.once('exit', () => this.markExited());
    const begin: ToWorker = { type: 'begin', root, umask: UMASK };
    this.worker.postMessage(begin);
    this.worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (code !== 0) this.fail(new Error(`unpack worker exited with ${code}`));
    });
    options.signal?.addEventListener('abort', () => this.destroy(new Error('aborted')), { once: true });
  }

  private onMessage(msg: FromWorker): void {
    switch (msg.type) {
      case 'ack':
        this.inFlight -= msg.bytes;
        this.consumed += msg.bytes;
        this.options.onProgress?.(this.consumed);
        if (this.consumed >= this.writebackAt && !this.writeback) {
          this.writebackAt = this.consumed + WRITEBACK_EVERY;
          // only a head start: the commit's syncfs is what makes the layer durable
          this.writeback = native()
            .syncfs(this.root)
            .catch(() => {})
            .finally(() => (this.writeback = null));
        }
        if (this.waiting && this.inFlight < MAX_IN_FLIGHT) {
          const w = this.waiting;
          this.waiting = null;
          w();
        }
        break;
      case 'done':
        this.settled = true;
        this.settle.resolve({ diffID: msg.diffID as Digest, size: msg.size, tarSize: msg.tarSize });
        // every file is written and the file writers are gone: the worker can take the next layer
        this.ownsWorker = false;
        releaseWorker(this.worker);
        this.markExited();
        break;
      case 'error':
        this.fail(msg.invalid ? invalidArgument(msg.message) : new Error(msg.message));
        break;
    }
  }

  private fail(err: Error): void {
    if (this.failure || this.settled) return;
    this.failure = err;
    this.settle.reject(err);
    this.terminate();
    const w = this.waiting;
    this.waiting = null;
    w?.();
    if (!this.destroyed) this.destroy(err);
  }

  private send(bytes: Uint8Array): void {
    this.inFlight += bytes.length;
    const msg: ToWorker = { type: 'data', bytes };
    this.worker.postMessage(msg, [bytes.buffer as ArrayBuffer]);
  }

  private flushBatch(): void {
    if (this.batchLength === 0) return;
    const full = this.batch.subarray(0, this.batchLength);
    const out = this.batchLength === BATCH ? full : full.slice();
    this.batch = new Uint8Array(BATCH);
    this.batchLength = 0;
    this.send(out);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.failure) return cb(this.failure);
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(BATCH - this.batchLength, chunk.length - off);
      this.batch.set(chunk.subarray(off, off + n), this.batchLength);
      this.batchLength += n;
      off += n;
      if (this.batchLength === BATCH) this.flushBatch();
    }
    if (this.inFlight < MAX_IN_FLIGHT) return cb();
    this.waiting = () => cb(this.failure);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.failure) return cb(this.failure);
    this.flushBatch();
    const end: ToWorker = { type: 'end' };
    this.worker.postMessage(end);
    this.result.then(
      () => cb(),
      (err: Error) => cb(err),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (err) this.fail(err);
    else if (!this.failure && !this.settled) {
      // destroyed before the end: the result never comes
      this.failure = new Error('layer unpacking was interrupted');
      this.settle.reject(this.failure);
      this.terminate();
    }
    cb(err);
  }

  /** Stops the worker (if it still runs) and resolves once it is gone, before the caller removes the directory. */
  async stop(): Promise<void> {
    if (!this.destroyed) this.destroy();
    this.terminate();
    await this.exited;
  }

  private terminate(): void {
    if (this.ownsWorker) void this.worker.terminate();
  }
}

/**
 * Consumes an uncompressed tar stream into root (which must be empty and
 * private to this call). Resolves with the diffID once the whole stream was
 * read, hashed and written.
 */
export async function applyLayer(source: Readable, root: string, options: ApplyOptions = {}): Promise<ApplyResult> {
  const unpacker = new LayerUnpacker(root, options);
  try {
    await pipeline(source, unpacker);
  } catch (err) {
    await unpacker.stop();
    // the worker's own error says more than the stream's
    await unpacker.result.catch((workerErr: unknown) => {
      throw workerErr;
    });
    throw err;
  }
  return unpacker.result;
}
