/**
 * A file writer helper of the unpack worker (parallel-files.ts): creates
 * regular files, writes their bytes, sets owner, mode, times and xattrs,
 * in the order the ops arrive, and counts finished files and bytes in
 * shared memory (a new block for each layer: the 'start' message). Paths were checked by the unpack worker; files are still
 * created with O_EXCL, so nothing existing is ever followed or overwritten.
 */
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { native } from '../runtime/native.js';
import { type FileOp, type FileWriterStart, sharedViews } from './parallel-files.js';

// set by each layer's 'start' message (a helper is reused for the next layer)
let index = 0;
let views: ReturnType<typeof sharedViews>;
let fd: number | null = null;
let path = '';
let failed = false;

function fail(err: unknown): void {
  failed = true;
  const message = Buffer.from(`writing ${path}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 4000));
  views.text.set(message);
  views.text[message.length] = 0;
  Atomics.store(views.error, 0, 1);
  Atomics.notify(views.done, index);
  Atomics.notify(views.bytes, 0);
}

function apply(op: FileOp): void {
  switch (op.t) {
    case 'b':
      path = op.path;
      fd = fs.openSync(op.path, 'wx', op.mode & 0o777);
      break;
    case 'd': {
      let off = 0;
      while (off < op.bytes.length) off += fs.writeSync(fd!, op.bytes, off, op.bytes.length - off);
      Atomics.add(views.bytes, 0, BigInt(op.bytes.length));
      Atomics.notify(views.bytes, 0);
      break;
    }
    case 'e': {
      const f = fd!;
      fd = null;
      try {
        // chown before chmod: chown clears set-id bits
        if (op.chown) fs.fchownSync(f, op.uid, op.gid);
        if (op.chmod) fs.fchmodSync(f, op.mode);
        fs.futimesSync(f, op.mtime, op.mtime);
      } finally {
        fs.closeSync(f);
      }
      for (const [name, value] of op.xattrs) {
        try {
          native().lsetxattr(path, name, Buffer.from(value));
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code !== 'ENOTSUP' && code !== 'EPERM') throw err;
        }
      }
      Atomics.add(views.done, index, 1);
      Atomics.notify(views.done, index);
      break;
    }
  }
}

parentPort!.on('message', (msg: FileOp[] | FileWriterStart) => {
  if (!Array.isArray(msg)) {
    index = msg.index;
    views = sharedViews(msg.shared, msg.helpers);
    fd = null;
    path = '';
    failed = false;
    return;
  }
  const ops = msg;
  if (failed) return;
  try {
    for (const op of ops) apply(op);
  } catch (err) {
    if (fd !== null) {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
      fd = null;
    }
    fail(err);
  }
});
