/**
 * A real dockerd (Debian docker.io) for interop tests: its own data root,
 * exec root, socket and pid file, no bridge and no iptables, so it touches
 * nothing of the host. Stopped by pid; its containerd too; leftover mounts
 * under its directory are unmounted before the directory is removed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { requireTool, run, tempDir } from './procs.js';
import http from 'node:http';

export interface Dockerd {
  dir: string;
  socket: string;
  /** Environment for the docker CLI: DOCKER_HOST and a private DOCKER_CONFIG. */
  env: Record<string, string>;
  docker(args: string[], options?: { input?: string; allowFail?: boolean }): { status: number; stdout: string; stderr: string };
  stop(): Promise<void>;
}

function pingSocket(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: socket, path: '/_ping', method: 'GET' }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** storageDriver: vfs by default (works everywhere); benchmarks use overlay2, Docker's default. */
export async function startDockerd(options: { storageDriver?: string } = {}): Promise<Dockerd> {
  const dockerd = requireTool('dockerd', 'docker.io');
  const cli = requireTool('docker', 'docker.io (or the docker CLI)');
  const dir = await tempDir('dockerd');
  const socket = path.join(dir, 'docker.sock');
  const logFile = path.join(dir, 'dockerd.log');
  const log = fs.openSync(logFile, 'a');
  const child: ChildProcess = spawn(
    dockerd,
    [
      '--data-root', path.join(dir, 'data'),
      '--exec-root', path.join(dir, 'exec'),
      '-H', `unix://${socket}`,
      '--pidfile', path.join(dir, 'docker.pid'),
      '--bridge=none', '--iptables=false', '--ip6tables=false', '--userland-proxy=false',
      '--storage-driver', options.storageDriver ?? 'vfs',
    ],
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  const deadline = Date.now() + 30_000;
  while (!(await pingSocket(socket))) {
    if (child.exitCode !== null) throw new Error(`dockerd exited ${child.exitCode}: ${await fsp.readFile(logFile, 'utf8')}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`dockerd did not start: ${await fsp.readFile(logFile, 'utf8')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: path.join(dir, 'client-config') };
  return {
    dir,
    socket,
    env,
    docker: (args, options = {}) => run(cli, args, { env, ...options }),
    stop: async () => {
      const containerdPidFile = path.join(dir, 'exec', 'containerd', 'containerd.pid');
      let containerdPid: number | undefined;
      try {
        containerdPid = Number((await fsp.readFile(containerdPidFile, 'utf8')).trim());
      } catch {
        containerdPid = undefined;
      }
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
      if (containerdPid !== undefined && containerdPid > 0 && isAlive(containerdPid)) {
        process.kill(containerdPid, 'SIGTERM');
        for (let i = 0; i < 50 && isAlive(containerdPid); i++) await new Promise((r) => setTimeout(r, 100));
        if (isAlive(containerdPid)) process.kill(containerdPid, 'SIGKILL');
      }
      // Unmount anything dockerd left under its directory, deepest first.
      const mounts = (await fsp.readFile('/proc/self/mountinfo', 'utf8'))
        .split('\n')
        .map((l) => l.split(' ')[4])
        .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(dir + '/')))
        .sort((a, b) => b.length - a.length);
      for (const m of mounts) run('umount', ['-l', m], { allowFail: true });
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}
