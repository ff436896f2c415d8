/**
 * The JSON-lines progress messages of pull, push and load, in the shape the
 * docker CLI renders as bars: status, id, progressDetail{current,total} and
 * the legacy `progress` text (dockerd's JSONProgress.String).
 */
export interface ProgressMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  progress?: string;
  stream?: string;
  aux?: Record<string, unknown>;
}

export type ProgressSink = (message: ProgressMessage) => void;

export const noProgress: ProgressSink = () => {};

/** The short form of a digest that Docker uses as a progress id. */
export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** go-units HumanSize: decimal units, four significant digits ("1.234MB"). */
export function decimalSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let n = bytes;
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${Number(n.toPrecision(4))}${units[i]}`;
}

export function progressBar(current: number, total: number): string {
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return decimalSize(current).padStart(8);
  const filled = Math.min(50, Math.floor(Math.floor((current / total) * 100) / 2));
  return `[${'='.repeat(filled)}>${' '.repeat(50 - filled)}] ${decimalSize(current).padStart(8)}/${decimalSize(total)}`;
}

export function detail(status: string, id: string, current: number, total: number): ProgressMessage {
  return { status, id, progressDetail: { current, total }, progress: progressBar(current, total) };
}

export function simple(status: string, id: string): ProgressMessage {
  return { status, id, progressDetail: {} };
}

/** Limits a stream of byte-count updates to one message per interval (and the last one). */
export class Throttle {
  private last = 0;
  constructor(private readonly intervalMs = 100) {}
  ready(final = false): boolean {
    const now = Date.now();
    if (!final && now - this.last < this.intervalMs) return false;
    this.last = now;
    return true;
  }
}

/** A counting semaphore: at most `limit` holders at once, in arrival order. */
export class Semaphore {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    };
  }

  get busy(): boolean {
    return this.active >= this.limit;
  }
}
