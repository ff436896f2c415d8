/**
 * Attach clients waiting for a container to start, and the plumbing from a
 * conmon attach connection to a client. `docker run` attaches before it
 * starts the container; we connect to conmon between `runc create` and
 * `runc start`, so no output is lost.
 */
import { DetachFilter } from '../../core/containers/detach-keys.js';

/**
 * A process's streams as a client sees them: a conmon attach connection, or
 * an exec helper's pipes. 'data' carries the stream (1 stdout, 2 stderr).
 */
export interface AttachStream {
  on(event: 'data', listener: (stream: number, data: Buffer) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  write(data: Buffer): void;
  /** End of the client's input. */
  endInput(): void;
  /** The client is gone. */
  close(): void;
}

export interface AttachInput {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}

export interface AttachClient {
  /** The detach sequence (bytes); none when empty. */
  detachKeys?: number[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** Output of the container: stream 1 stdout, 2 stderr (a tty sends all as 1). */
  output(stream: 1 | 2, data: Buffer): void;
  /** No more output will come (the container ended or we were detached). */
  close(): void;
  /** The client's stdin, when it asked for it. */
  input?: AttachInput;
  /** Registers a callback for when the client disconnects. */
  onGone(callback: () => void): void;
}

export class AttachHub {
  private readonly pending = new Map<string, Set<AttachClient>>();

  wait(id: string, client: AttachClient): void {
    let set = this.pending.get(id);
    if (!set) this.pending.set(id, (set = new Set()));
    set.add(client);
    client.onGone(() => set!.delete(client));
  }

  hasPending(id: string): boolean {
    return (this.pending.get(id)?.size ?? 0) > 0;
  }

  take(id: string): AttachClient[] {
    const set = this.pending.get(id);
    this.pending.delete(id);
    return set ? [...set] : [];
  }

  /** Ends clients still waiting for a container that is going away. */
  closeAll(id: string): void {
    for (const c of this.take(id)) c.close();
  }

  /**
   * Plumbs a client to a process's streams. `onEnd` decides when the
   * client's stream closes (exec waits for the exit code first); detaching
   * closes the client but leaves the process running.
   */
  static connect(client: AttachClient, conn: AttachStream, onEnd: () => void = () => client.close()): void {
    conn.on('data', (stream: number, data: Buffer) => {
      if (stream === 1 && client.stdout) client.output(1, data);
      else if (stream === 2 && client.stderr) client.output(2, data);
    });
    conn.on('end', onEnd);
    if (client.stdin && client.input) {
      const filter = new DetachFilter(client.detachKeys ?? []);
      let detached = false;
      client.input.on('data', (chunk) => {
        if (detached) return;
        const { out, detach } = filter.push(chunk);
        if (out.length) conn.write(out);
        if (detach) {
          detached = true;
          client.close();
        }
      });
      client.input.on('end', () => {
        if (!detached) conn.endInput();
      });
    }
    client.onGone(() => conn.close());
  }
}
