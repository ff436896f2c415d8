/**
 * Attaching the terminal to a container: the hijacked attach stream,
 * demultiplexed to stdout/stderr (or raw for a tty), stdin forwarded, the
 * terminal put in raw mode and kept at the right size.
 */
import type { Duplex } from 'node:stream';
import type { EngineClient } from '../client/client.js';
import { FrameReader } from '../server/stdcopy.js';

export interface Attached {
  /** Resolves when the daemon closes the stream (the container's output ended). */
  done: Promise<void>;
  close(): void;
}

export async function attachContainer(
  client: EngineClient,
  id: string,
  o: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean; logs?: boolean },
): Promise<Attached> {
  const { socket, head } = await client.hijack('POST', `/containers/${id}/attach`, {
    query: { stream: true, stdin: o.stdin, stdout: o.stdout, stderr: o.stderr, logs: o.logs ?? false },
  });
  const out = (s: number, data: Buffer): void => {
    (s === 2 ? process.stderr : process.stdout).write(data);
  };
  const reader = o.tty ? undefined : new FrameReader(out);
  const onData = (chunk: Buffer): void => {
    if (reader) reader.push(chunk);
    else process.stdout.write(chunk);
  };
  if (head.length) onData(head);
  socket.on('data', onData);
  let restore: (() => void) | undefined;
  if (o.stdin) restore = forwardStdin(socket, o.tty);
  else socket.end(); // half-close: no input from us
  const done = new Promise<void>((resolve) => {
    socket.on('end', resolve);
    socket.on('close', resolve);
    socket.on('error', resolve);
  }).finally(() => restore?.());
  return {
    done,
    close: () => socket.destroy(),
  };
}

function forwardStdin(socket: Duplex, tty: boolean): () => void {
  const stdin = process.stdin;
  const raw = tty && stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const onData = (b: Buffer): void => {
    socket.write(b);
  };
  const onEnd = (): void => {
    socket.end();
  };
  stdin.on('data', onData);
  stdin.on('end', onEnd);
  stdin.resume();
  return () => {
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  };
}

/** Keeps the container's tty the size of ours. */
export function followTerminalSize(client: EngineClient, id: string): () => void {
  if (!process.stdout.isTTY) return () => {};
  const resize = (): void => {
    void client
      .call('POST', `/containers/${id}/resize`, { query: { h: process.stdout.rows, w: process.stdout.columns } })
      .catch(() => {});
  };
  resize();
  process.stdout.on('resize', resize);
  return () => process.stdout.off('resize', resize);
}
