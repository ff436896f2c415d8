/**
 * Helper programs berthd runs for each container (runc, netavark), started
 * with the addon's posix_spawn: child_process forks the daemon (some 60 MB)
 * for each, ~2 ms of the event loop, and a `docker run --rm` costs two or
 * three of them. Same result as util/proc's run(): exit code, signal, output.
 */
import net from 'node:net';
import os from 'node:os';
import type { RunResult } from '../../util/proc.js';
import { closeFds, devNull, native } from './native.js';

export interface HelperOptions {
  input?: string | Buffer;
  /** The whole environment (default: berthd's own). */
  env?: NodeJS.ProcessEnv;
}

/** Signal numbers to names; the first name for each (SIGABRT, not its alias SIGIOT), as child_process says. */
const SIGNAL_NAMES = new Map<number, NodeJS.Signals>();
for (const [name, n] of Object.entries(os.constants.signals)) if (!SIGNAL_NAMES.has(n)) SIGNAL_NAMES.set(n, name as NodeJS.Signals);

/** Runs file (an absolute path) with args; resolves once it exited and its output ended. */
export function runHelper(file: string, args: readonly string[], options: HelperOptions = {}): Promise<RunResult> {
  const addon = native();
  const ours: number[] = [];
  const theirs: number[] = [];
  let stdin: number;
  let input: number | undefined;
  let outR: number, errR: number;
  try {
    let w: number;
    [outR, w] = addon.pipe();
    ours.push(outR);
    theirs.push(w);
    [errR, w] = addon.pipe();
    ours.push(errR);
    theirs.push(w);
    if (options.input !== undefined) {
      [stdin, input] = addon.pipe();
      ours.push(input);
      theirs.push(stdin);
    } else {
      stdin = devNull();
    }
  } catch (err) {
    closeFds([...ours, ...theirs]);
    return Promise.reject(err);
  }
  const env = Object.entries(options.env ?? process.env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);

  return new Promise((resolve, reject) => {
    let exit: { code: number; signal: number } | undefined;
    let openStreams = 2;
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const settle = (): void => {
      if (!exit || openStreams > 0) return;
      resolve({
        code: exit.code,
        signal: exit.code < 0 ? (SIGNAL_NAMES.get(exit.signal) ?? null) : null,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    };
    try {
      addon.spawn(
        file,
        [file, ...args],
        [stdin, theirs[0], theirs[1]],
        (code, signal) => {
          exit = { code, signal };
          settle();
        },
        env,
      );
    } catch (err) {
      closeFds([...ours, ...theirs]);
      reject(err);
      return;
    }
    closeFds(theirs); // the child has its copies
    const collect = (fd: number, into: Buffer[]): void => {
      const sock = new net.Socket({ fd, readable: true, writable: false });
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        sock.destroy();
        openStreams--;
        settle();
      };
      sock.on('data', (b: Buffer) => into.push(b));
      sock.on('end', end);
      sock.on('close', end);
      sock.on('error', end);
    };
    collect(outR, stdout);
    collect(errR, stderr);
    if (input !== undefined && options.input !== undefined) {
      const sock = new net.Socket({ fd: input, readable: false, writable: true });
      sock.on('error', () => {}); // a child that exits without reading (EPIPE): its exit says what happened
      sock.end(options.input);
    }
  });
}
