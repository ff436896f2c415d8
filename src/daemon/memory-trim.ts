/**
 * Hands memory back once the daemon is idle. Threads that allocate a lot
 * and go away (the workers that unpack layers, the thread pool) leave what
 * they freed in glibc's arenas; V8's memory reducer returns V8's own heap
 * about 10 s after the last work but never reaches those. malloc_trim does:
 * an idle berthd after a `docker load` and a few runs went 63.8 → 58.5 MB.
 */
import { native } from '../engine/runtime/native.js';

export class MemoryTrimmer {
  private readonly timer: NodeJS.Timeout;

  constructor(idleMs = 10_000) {
    this.timer = setTimeout(() => void native().mallocTrim().catch(() => {}), idleMs);
    this.timer.unref();
  }

  /** Something happened: trim once things have been quiet for idleMs. */
  activity(): void {
    this.timer.refresh();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
