/**
 * Real server processes for tests: the Berth registry (bin/berth registry
 * serve) and CNCF distribution 2.8 (Debian's docker-registry) as the honest
 * reference, each on its own temp root and a loopback port, stopped by pid.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../helpers/registry.js';
import { request } from './http.js';

export { freePort };

/** The repository checkout (dist/test/registry/helpers → four levels up). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const BERTH_BIN = path.join(REPO_ROOT, 'bin', 'berth');

export async function tempDir(prefix: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), `berth-${prefix}-`));
}

/** Fails with a clear message when a tool the test needs is missing (CI installs scripts/apt-packages-test.txt). */
export function requireTool(name: string, debianPackage: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const where = found.stdout.trim();
  if (found.status !== 0 || where === '') {
    throw new Error(`${name} is not installed: apt-get install ${debianPackage} (listed in scripts/apt-packages-test.txt)`);
  }
  return where;
}


/** Servers this test process started and has not seen exit: killed (by pid) if the process exits first. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Tracks a server child so that a failed test can never leave it running or keep the test process alive. */
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.unref();
  (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
}

export interface ServerProcess {
  url: string;
  host: string;
  root: string;
  pid: number;
  child: ChildProcess;
  /** stderr lines so far (JSON logs for Berth). */
  logs: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

async function waitExit(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

export interface BerthOptions {
  root?: string;
  args?: string[];
  env?: Record<string, string>;
}

/** Starts `bin/berth registry serve` on 127.0.0.1:0 and waits for its "listening" line. */
export async function startBerth(options: BerthOptions = {}): Promise<ServerProcess> {
  const ownRoot = options.root === undefined;
  const root = options.root ?? (await tempDir('registry'));
  const args = [BERTH_BIN, 'registry', 'serve', '--root', root, '--addr', '127.0.0.1:0', ...(options.args ?? [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...options.env } });
  track(child);
  const logs: string[] = [];
  const secure = (options.args ?? []).includes('--tls-cert');
  const started = new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`registry did not start:\n${logs.join('\n')}`)), 15_000);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        try {
          const rec = JSON.parse(line) as { msg?: string; addr?: string };
          if (rec.msg === 'listening' && rec.addr !== undefined) {
            clearTimeout(timer);
            resolve(`${secure ? 'https' : 'http'}://${rec.addr}`);
          }
        } catch {
          // not JSON: keep it in logs
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`registry exited with ${code}:\n${logs.join('\n')}${buf}`));
    });
  });
  let url: string;
  try {
    url = await started;
  } catch (err) {
    // Never leave a half-started server or its temp root behind.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await waitExit(child, 5_000);
    }
    if (ownRoot) await fsp.rm(root, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    host: new URL(url).host,
    root,
    pid: child.pid!,
    child,
    logs,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return waitExit(child, 15_000);
    },
  };
}

export interface DistributionOptions {
  htpasswd?: string;
}

/** Starts CNCF distribution 2.8 (Debian docker-registry) with deletes enabled. */
export async function startDistribution(options: DistributionOptions = {}): Promise<ServerProcess> {
  const bin = requireTool('docker-registry', 'docker-registry');
  const root = await tempDir('distribution');
  const port = await freePort();
  const auth = options.htpasswd === undefined ? '' : `auth:\n  htpasswd:\n    realm: test\n    path: ${options.htpasswd}\n`;
  const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${root}/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
${auth}`;
  await fsp.writeFile(path.join(root, 'config.yml'), config);
  const child = spawn(bin, ['serve', path.join(root, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' } });
  track(child);
  const logs: string[] = [];
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => logs.push(c));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`docker-registry exited: ${logs.join('')}`);
      try {
        const res = await request('GET', `${url}/v2/`);
        if (res.status === 200 || res.status === 401) break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`docker-registry did not start: ${logs.join('')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await waitExit(child, 5_000);
    }
    await fsp.rm(root, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    root,
    pid: child.pid!,
    child,
    logs,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await waitExit(child, 15_000);
      await fsp.rm(root, { recursive: true, force: true });
      return code;
    },
  };
}

export async function removeDir(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
}

/** Runs a command, capturing output; throws with the output on a non-zero exit. */
export function run(cmd: string, args: string[], options: { env?: Record<string, string>; input?: string; cwd?: string; timeoutMs?: number; allowFail?: boolean } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    env: { ...process.env, ...options.env },
    input: options.input,
    cwd: options.cwd,
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 64 << 20,
  });
  const out = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  if (out.status !== 0 && options.allowFail !== true) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${out.status}${r.error ? ` (${r.error.message})` : ''}\nstdout: ${out.stdout}\nstderr: ${out.stderr}`);
  }
  return out;
}

export function fileExists(p: string): boolean {
  return fs.existsSync(p);
}
