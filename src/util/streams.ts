/** Small helpers for Node streams. */

/**
 * Resolves when a writable that refused a write drains, or when it closes
 * (destroyed: a 'drain' would never come). The caller checks which.
 */
export function drainedOrClosed(stream: NodeJS.EventEmitter): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
