/**
 * Typed access to the native addon (native/src/berth_native.c): the system
 * calls Node.js lacks. Loaded once, lazily, so the CLI never pays for it.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeAddon {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  /** syncfs(2) of the filesystem holding path, on the thread pool. */
  syncfs(path: string): Promise<void>;
  /**
   * data written to tmp (created, mode), fsync'd, renamed over path, the
   * directory fsync'd: one job on the thread pool. tmp is gone on failure.
   */
  writeFileAtomic(path: string, tmp: string, data: Buffer, mode: number): Promise<void>;
  /** glibc's malloc_trim(0) on the thread pool: returns what threads freed to the system. */
  mallocTrim(): Promise<void>;
  /**
   * Sets ext4's FS_TOPDIR_FL on a directory, so that each new subdirectory is
   * placed in a block group of its own (Orlov); false where unsupported.
   */
  setTopdir(path: string): boolean;
  /** A new network namespace bind-mounted on path (an existing empty file). */
  createNetns(path: string): void;
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
  seqpacketConnect(path: string, onPacket: (type: number, data: Buffer | null) => void): SeqpacketHandle;
  seqpacketWrite(handle: SeqpacketHandle, data: Buffer): void;
  seqpacketShutdown(handle: SeqpacketHandle): void;
  seqpacketClose(handle: SeqpacketHandle): void;
  /** A pipe: [read end, write end], close-on-exec. */
  pipe(): [number, number];
  /** Two connected AF_UNIX stream sockets, close-on-exec. */
  socketpair(): [number, number];
  /** A memfd copy of the file, sealed against writes (execute it as /proc/self/fd/N). */
  sealedCopy(path: string): number;
  /**
   * posix_spawn (no copy of the daemon's memory) with stdio[i] as fd i,
   * default signals, a new session and the given environment (empty without
   * it); onExit gets the exit code, or -1 and the signal number. Returns the pid.
   */
  spawn(file: string, argv: string[], stdio: number[], onExit: (code: number, signal: number) => void, env?: string[]): number;
  /** An OCI LinuxSeccomp compiled to BPF (struct sock_filter[]) as runc 1.1 loads it. */
  seccompCompile(profile: object): Buffer;
  /** A gzip decompression stream's state (ISA-L); see archive/gunzip.ts. */
  gunzipCreate(): GunzipHandle;
  /**
   * Inflates input[offset..] into output[outOffset..] on the thread pool; `full`: the output
   * filled up before the input was used up (call again). One call at a time per handle.
   */
  gunzipRun(
    handle: GunzipHandle,
    input: Buffer,
    offset: number,
    output: Buffer,
    outOffset: number,
    final: boolean,
    callback: (err: Error | null, consumed: number, produced: number, full: boolean) => void,
  ): void;
  /** Frees the state (once the running call, if any, is over). */
  gunzipClose(handle: GunzipHandle): void;
}

/** Opaque handles owned by the addon. */
export type SeqpacketHandle = { readonly __seqpacket: unique symbol };
export type GunzipHandle = { readonly __gunzip: unique symbol };

export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_PRIVATE = 1 << 18;
export const MNT_DETACH = 2;

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (!addon) {
    const here = path.dirname(fileURLToPath(import.meta.url));
    // dist/src/engine/runtime -> repository root
    const root = path.resolve(here, '../../../..');
    const require = createRequire(import.meta.url);
    addon = require(path.join(root, 'native/build/Release/berth_native.node')) as NativeAddon;
  }
  return addon;
}

/** Closes descriptors of our own (pipe ends a child has its copies of, or a failed spawn's). */
export function closeFds(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
  }
}

let devNullFd: number | undefined;

/** One descriptor of /dev/null (read-write, close-on-exec) for the stdio of spawned helpers. */
export function devNull(): number {
  if (devNullFd === undefined) devNullFd = fs.openSync('/dev/null', 'r+');
  return devNullFd;
}

const O_PATH = 0o10000000;

/**
 * Unmounts target (detached) and lets the filesystem end off the main thread.
 * The last reference to an overlay syncs its whole upper filesystem as it goes
 * (ovl_sync_fs), as does any disk filesystem: 100 ms and more while other
 * writes are pending, and a plain umount2 pays it inside the call. A
 * descriptor opened on the mount first keeps it alive through the detach;
 * closing that on libuv's thread pool does the rest. The promise settles once
 * the filesystem is gone (true) or at once when nothing was mounted (false).
 */
export function unmountDetached(target: string): Promise<boolean> {
  let pin: number | undefined;
  try {
    pin = fs.openSync(target, O_PATH | fs.constants.O_DIRECTORY);
  } catch {
    // not a directory we can open: umount2 says what is wrong, if anything
  }
  try {
    native().umount2(target, MNT_DETACH);
  } catch (err) {
    if (pin !== undefined) fs.closeSync(pin); // not a mount: nothing ends with it
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EINVAL' || code === 'ENOENT') return Promise.resolve(false);
    throw err;
  }
  if (pin === undefined) return Promise.resolve(true);
  const fd = pin;
  return new Promise((resolve) => fs.close(fd, () => resolve(true)));
}
