/**
 * A real dockerd (Debian docker.io, Docker 20.10) of a test's or a
 * benchmark's own: own data root, exec root, socket and pid file, no
 * bridge and no iptables, so it touches nothing of the host's or of other
 * daemons. Stopped by pid (its containerd child too), mounts under its
 * directory detached, directory removed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { type ExecResult, exec, unmountUnder } from './daemon.js';

export const DOCKERD = process.env.BERTH_TEST_DOCKERD ?? '/usr/sbin/dockerd';

export class TestDockerd {
  private proc: ChildProcess | undefined;
  readonly host: string;

  private constructor(readonly dir: string) {
    this.host = `unix://${path.join(dir, 'docker.sock')}`;
  }

  static available(): boolean {
    return fs.existsSync(DOCKERD);
  }

  static async start(args: string[] = []): Promise<TestDockerd> {
    const dir = await fsp.mkdtemp('/tmp/btdockerd-');
    const d = new TestDockerd(dir);
    const log = fs.openSync(path.join(dir, 'dockerd.log'), 'a');
    d.proc = spawn(
      DOCKERD,
      [
        '--data-root', path.join(dir, 'data'),
        '--exec-root', path.join(dir, 'exec'),
        '-H', d.host,
        '--pidfile', path.join(dir, 'docker.pid'),
        '--bridge=none', '--iptables=false', '--ip6tables=false',
        '--storage-driver', 'overlay2',
        '--cgroup-parent', `/btdockerd-${path.basename(dir)}`,
        '--log-level', 'warn',
        ...args,
      ],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (d.proc.exitCode !== null) throw new Error(`dockerd exited: ${await fsp.readFile(path.join(dir, 'dockerd.log'), 'utf8')}`);
      const r = await d.docker(['version', '--format', '{{.Server.Version}}']).catch(() => undefined);
      if (r?.code === 0) break;
      if (Date.now() > deadline) throw new Error('dockerd did not come up');
      await new Promise((r) => setTimeout(r, 200));
    }
    return d;
  }

  docker(args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<ExecResult> {
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: this.host, DOCKER_CONFIG: path.join(this.dir, 'docker-config') };
    delete env.DOCKER_CONTEXT;
    return exec('docker', args, { ...opts, env });
  }

  private children(pid: number): number[] {
    const out: number[] = [];
    for (const task of fs.readdirSync(`/proc/${pid}/task`, { withFileTypes: true }).map((t) => t.name)) {
      const text = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
    return out;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.exitCode === null && proc.pid) {
      let kids: number[] = [];
      try {
        kids = this.children(proc.pid);
      } catch {
        // already gone
      }
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      for (const pid of kids) {
        try {
          if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.dir)) process.kill(pid, 'SIGKILL');
        } catch {
          // exited with dockerd
        }
      }
    }
    await unmountUnder(this.dir);
    for (const h of await fsp.readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
      await fsp.rmdir(path.join('/sys/fs/cgroup', h, `btdockerd-${path.basename(this.dir)}`)).catch(() => {});
    }
    if (!process.env.BERTH_KEEP_TEST_DIRS) await fsp.rm(this.dir, { recursive: true, force: true }).catch(() => {});
  }
}
