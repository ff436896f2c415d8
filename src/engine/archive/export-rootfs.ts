/**
 * `docker export`: a container's filesystem as one tar. The container's
 * writable layer and its image layers are mounted read-only as one overlay
 * (upper as the topmost lower dir: no work dir, so it works while the
 * container runs) on a private temporary directory, and GNU tar streams it
 * (numeric owners, capabilities kept). The mount goes away when the stream
 * ends, fails or the client leaves.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { OverlayMount } from '../../core/snapshots/snapshotter.js';
import { MNT_DETACH, MS_RDONLY, native } from '../runtime/native.js';

export async function exportRootfs(mount: OverlayMount, tmpRoot: string): Promise<Readable> {
  const dir = path.join(tmpRoot, `export-${crypto.randomBytes(8).toString('hex')}`);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const lower = [mount.upperDir, ...mount.lowerDirs].join(':');
  try {
    native().mount('overlay', dir, 'overlay', MS_RDONLY, `lowerdir=${lower}`);
  } catch (err) {
    await fsp.rmdir(dir).catch(() => {});
    throw err;
  }
  const cleanup = async (): Promise<void> => {
    try {
      native().umount2(dir, MNT_DETACH);
    } catch {
      // already gone
    }
    await fsp.rmdir(dir).catch(() => {});
  };
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const child = spawn('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=security.capability', '-C', dir, '-cf', '-', '--', ...(names.length ? names.sort() : ['.'])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const out = child.stdout;
  child.on('close', (code) => {
    void cleanup();
    if (code !== 0 && code !== null) out.destroy(new Error(`tar failed (exit ${code}): ${stderr.trim()}`));
  });
  child.on('error', (err) => {
    void cleanup();
    out.destroy(err);
  });
  out.on('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return out;
}

/** At start: exports interrupted by a crash leave mounts under dir; detach them, then remove the dir. */
export async function sweepExportMounts(dir: string): Promise<void> {
  const mountinfo = await fsp.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const mounts = mountinfo
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && m.startsWith(dir + '/'));
  for (const m of mounts) {
    try {
      native().umount2(m, MNT_DETACH);
    } catch {
      // already gone
    }
  }
  await fsp.rm(dir, { recursive: true, force: true });
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
}
