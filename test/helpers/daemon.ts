/**
 * A berthd of a test's own: its own data root, exec root, socket and cgroup
 * parent under a fresh temp dir. Runs the real docker CLI and the berth CLI
 * against it, and cleans up everything it started (containers by API or by
 * their recorded pids, mounts, cgroups, directories) — never by process name.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { EngineClient } from '../../src/client/client.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BERTHD = path.join(REPO, 'bin/berthd');
export const BERTH = path.join(REPO, 'bin/berth');
export const BUSYBOX_SCRIPT = path.join(REPO, 'scripts/busybox-rootfs.sh');

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function exec(cmd: string, args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : -1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.on('error', () => {});
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

let busyboxTar: Buffer | undefined;
export async function busyboxRootfsTar(): Promise<Buffer> {
  if (!busyboxTar) {
    const r = await new Promise<Buffer>((resolve, reject) => {
      const child = spawn(BUSYBOX_SCRIPT, [], { stdio: ['ignore', 'pipe', 'inherit'] });
      const chunks: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => chunks.push(b));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`busybox-rootfs.sh exited ${code}`))));
    });
    busyboxTar = r;
  }
  return busyboxTar;
}

const SUBNET_RESERVATIONS = '/tmp/bt-subnets';

/**
 * A third octet for 10.231.X.0/24 and 10.232.X.0/24 that no other test
 * daemon (reservation files) and no interface on the host uses.
 */
function reserveSubnetIndex(owner: string): number {
  fs.mkdirSync(SUBNET_RESERVATIONS, { recursive: true });
  const used = new Set<number>();
  // `ip`, not os.networkInterfaces(): that leaves out bridges without carrier
  const addrs = execFileSync('ip', ['-o', '-4', 'addr', 'show']).toString();
  for (const m of addrs.matchAll(/inet 10\.23[12]\.(\d+)\./g)) used.add(Number(m[1]));
  for (let attempt = 0; attempt < 1000; attempt++) {
    const x = 1 + Math.floor(Math.random() * 250);
    if (used.has(x)) continue;
    const file = path.join(SUBNET_RESERVATIONS, String(x));
    try {
      fs.writeFileSync(file, owner, { flag: 'wx' });
      return x;
    } catch {
      // taken: stale if its owner's directory is gone
      const holder = fs.readFileSync(file, 'utf8');
      if (!fs.existsSync(holder)) {
        fs.writeFileSync(file, owner);
        return x;
      }
    }
  }
  throw new Error('no free test subnet');
}

export interface DaemonOptions {
  /** Extra berthd flags. */
  args?: string[];
  /** Import busybox:latest after start (default true). */
  busybox?: boolean;
}

export class TestDaemon {
  readonly dir: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly socket: string;
  readonly host: string;
  readonly cgroupParent: string;
  private proc: ChildProcess | undefined;
  private logStream: fs.WriteStream | undefined;
  client: EngineClient;

  private constructor(dir: string, private readonly options: DaemonOptions, subnetIndex?: number) {
    this.dir = dir;
    this.dataRoot = path.join(dir, 'root');
    this.execRoot = path.join(dir, 'run');
    this.socket = path.join(dir, 'berth.sock');
    this.host = `unix://${this.socket}`;
    this.cgroupParent = `/berth-test-${path.basename(dir)}`;
    this.client = new EngineClient(this.host);
    this.bridge = `bt${path.basename(dir).slice(3, 9).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`;
    this.subnetIndex = subnetIndex ?? reserveSubnetIndex(dir);
  }

  /**
   * Cleans up after test daemons whose test process died before its cleanup
   * (killed, or a broken pipe): their berthd is gone but containers, mounts,
   * cgroups, bridges and firewall rules may remain. Directories of a running
   * berthd, or made in the last minute, are left alone.
   */
  static async sweepAbandoned(): Promise<string[]> {
    const swept: string[] = [];
    const cmdlines: string[] = [];
    for (const pid of await fsp.readdir('/proc').catch(() => [] as string[])) {
      if (/^\d+$/.test(pid)) cmdlines.push(await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''));
    }
    const reservations = new Map<string, number>();
    for (const f of await fsp.readdir(SUBNET_RESERVATIONS).catch(() => [] as string[])) {
      reservations.set(await fsp.readFile(path.join(SUBNET_RESERVATIONS, f), 'utf8').catch(() => ''), Number(f));
    }
    for (const name of await fsp.readdir('/tmp')) {
      if (!/^bt-[A-Za-z0-9]{6}$/.test(name)) continue;
      const dir = path.join('/tmp', name);
      if (cmdlines.some((c) => c.includes('berthd') && c.includes(`${dir}/root`))) continue;
      const st = await fsp.stat(dir).catch(() => undefined);
      if (!st?.isDirectory() || Date.now() - st.mtimeMs < 60_000) continue;
      const d = new TestDaemon(dir, {}, reservations.get(dir) ?? -1);
      await d.killLeftovers();
      await d.unmountAll();
      await d.removeCgroups();
      await d.removeNetworkLeftovers();
      await d.removeBridgesAndRules();
      await fsp.rm(dir, { recursive: true, force: true });
      if (d.subnetIndex >= 0) await fsp.rm(path.join(SUBNET_RESERVATIONS, String(d.subnetIndex)), { force: true });
      swept.push(dir);
    }
    return swept;
  }

  /** A dead daemon's bridges (default and user networks) and the netavark rules for them. */
  private async removeBridgesAndRules(): Promise<void> {
    const bridges = new Set([this.bridge]);
    const subnets = new Set(this.subnetIndex >= 0 ? [this.bridgeSubnet] : []);
    try {
      const doc = JSON.parse(await fsp.readFile(path.join(this.dataRoot, 'networks', 'networks.json'), 'utf8')) as {
        networks: { bridge?: string; ipam?: { Config?: { Subnet?: string }[] } }[];
      };
      for (const n of doc.networks) {
        if (n.bridge) bridges.add(n.bridge);
        for (const c of n.ipam?.Config ?? []) if (c.Subnet) subnets.add(c.Subnet);
      }
    } catch {
      // no networks recorded
    }
    for (const br of bridges) {
      const ports = await exec('ip', ['-o', 'link', 'show', 'master', br]).catch(() => undefined);
      for (const m of (ports?.stdout ?? '').matchAll(/^\d+: ([^:@\s]+)/gm)) await exec('ip', ['link', 'del', m[1]]).catch(() => {});
      await exec('ip', ['link', 'del', br]).catch(() => {});
    }
    const mentions = (rule: string): boolean =>
      [...bridges].some((b) => new RegExp(`(^| )${b}( |$)`).test(rule)) || [...subnets].some((sub) => rule.includes(` ${sub} `) || rule.endsWith(` ${sub}`));
    for (const table of ['filter', 'nat']) {
      const rules = (await exec('iptables', ['-t', table, '-S']).catch(() => undefined))?.stdout ?? '';
      const chains = new Set<string>();
      for (const rule of rules.split('\n').filter((r) => r.startsWith('-A ') && mentions(r))) {
        const jump = / -j (NETAVARK-[0-9A-F]+)/.exec(rule)?.[1];
        if (jump) chains.add(jump);
        await exec('sh', ['-c', `iptables -t ${table} ${rule.replace(/^-A /, '-D ')}`]).catch(() => {});
      }
      for (const chain of chains) {
        await exec('iptables', ['-t', table, '-F', chain]).catch(() => {});
        await exec('iptables', ['-t', table, '-X', chain]).catch(() => {});
      }
    }
  }

  static async start(options: DaemonOptions = {}): Promise<TestDaemon> {
    const dir = await fsp.mkdtemp('/tmp/bt-');
    const d = new TestDaemon(dir, options);
    await d.launch();
    if (options.busybox ?? true) await d.importBusybox();
    return d;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get logFile(): string {
    return path.join(this.dir, 'berthd.log');
  }

  /** This daemon's default bridge and subnets, distinct from other test daemons. */
  readonly bridge: string;
  readonly subnetIndex: number;

  get bip(): string {
    return `10.231.${this.subnetIndex}.1/24`;
  }

  get bridgeSubnet(): string {
    return `10.231.${this.subnetIndex}.0/24`;
  }

  get poolBase(): string {
    return `10.232.${this.subnetIndex}.0/24`;
  }

  async launch(): Promise<void> {
    this.logStream = fs.createWriteStream(this.logFile, { flags: 'a' });
    const args = [
      '--data-root', this.dataRoot,
      '--exec-root', this.execRoot,
      '-H', this.host,
      '--cgroup-parent', this.cgroupParent,
      '--bridge', this.bridge,
      '--bip', this.bip,
      '--default-address-pool', `base=${this.poolBase},size=28`,
      '--log-level', 'debug',
      ...(this.options.args ?? []),
    ];
    // bin/berthd itself, so the node flags of its #! line apply
    const proc = spawn(BERTHD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.pipe(this.logStream, { end: false });
    proc.stderr!.pipe(this.logStream, { end: false });
    this.proc = proc;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`berthd exited with ${proc.exitCode}: ${await this.log()}`);
      try {
        await this.client.json('GET', '/version');
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`berthd did not come up: ${await this.log()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  async log(): Promise<string> {
    return fsp.readFile(this.logFile, 'utf8').catch(() => '');
  }

  /** Stops the daemon process only (containers keep running). */
  async stopDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return proc?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill(signal);
    const code = await exited;
    this.client.close();
    this.client = new EngineClient(this.host);
    return code;
  }

  async restartDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.stopDaemon(signal);
    await this.launch();
  }

  async importBusybox(name = 'busybox:latest'): Promise<void> {
    const r = await this.docker(['import', '-c', 'CMD ["sh"]', '-', name], { input: await busyboxRootfsTar() });
    if (r.code !== 0) throw new Error(`import failed: ${r.stderr}`);
  }

  env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: this.host, BERTH_HOST: this.host, DOCKER_CONFIG: path.join(this.dir, 'docker-config') };
    delete env.DOCKER_CONTEXT;
    return env;
  }

  /** docker CLI against this daemon; asserts success and returns the trimmed stdout. */
  async ok(args: string[], input?: string | Buffer): Promise<string> {
    const r = await this.docker(args, input !== undefined ? { input } : {});
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  }

  /** docker CLI against this daemon; asserts failure with a message on stderr. */
  async fails(args: string[], message: RegExp): Promise<void> {
    const r = await this.docker(args);
    assert.notEqual(r.code, 0, `docker ${args.join(' ')} should fail`);
    assert.match(r.stderr, message);
  }

  docker(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ExecResult> {
    return exec('docker', args, { ...opts, env: { ...this.env(), ...(opts.env ?? {}) } });
  }

  berth(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ExecResult> {
    return exec(BERTH, args, { ...opts, env: { ...this.env(), ...(opts.env ?? {}) } });
  }

  /** Removes every container, stops the daemon, and deletes all its state. */
  async cleanup(): Promise<void> {
    try {
      if (this.proc && this.proc.exitCode === null) {
        const list = await this.client.json<{ Id: string }[]>('GET', '/containers/json', { query: { all: true } }).catch(() => []);
        for (const c of list) await this.client.call('DELETE', `/containers/${c.Id}`, { query: { force: true } }).catch(() => {});
        const nets = await this.client.json<{ Id: string; Name: string }[]>('GET', '/networks').catch(() => []);
        for (const n of nets) {
          if (!['bridge', 'host', 'none'].includes(n.Name)) await this.client.call('DELETE', `/networks/${n.Id}`).catch(() => {});
        }
      }
    } finally {
      await this.stopDaemon('SIGTERM').catch(() => {});
      this.client.close();
      await this.killLeftovers();
      await this.unmountAll();
      await this.removeCgroups();
      await this.removeNetworkLeftovers();
      this.logStream?.end();
      if (!process.env.BERTH_KEEP_TEST_DIRS) await fsp.rm(this.dir, { recursive: true, force: true }).catch(() => {});
      await fsp.rm(path.join(SUBNET_RESERVATIONS, String(this.subnetIndex)), { force: true });
    }
  }

  /** Containers whose daemon is gone: kill them through their own runc root, and their conmons by recorded pid. */
  private async killLeftovers(): Promise<void> {
    const runcRoot = path.join(this.execRoot, 'runc');
    const list = await exec('runc', ['--root', runcRoot, 'list', '-q']).catch(() => undefined);
    for (const id of (list?.stdout ?? '').split('\n').filter(Boolean)) {
      await exec('runc', ['--root', runcRoot, 'kill', '--all', id, 'KILL']).catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
      await exec('runc', ['--root', runcRoot, 'delete', '--force', id]).catch(() => {});
    }
    const bundles = path.join(this.execRoot, 'containers');
    for (const id of await fsp.readdir(bundles).catch(() => [] as string[])) {
      const pid = parseInt(await fsp.readFile(path.join(bundles, id, 'conmon.pid'), 'utf8').catch(() => ''), 10);
      if (pid > 0) {
        try {
          const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          if (cmdline.includes(id)) process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }

  /** If the daemon could not clean up (killed), remove this daemon's aardvark and bridges ourselves. */
  private async removeNetworkLeftovers(): Promise<void> {
    const pidFile = path.join(this.execRoot, 'netavark', 'aardvark-dns', 'aardvark.pid');
    const pid = parseInt(await fsp.readFile(pidFile, 'utf8').catch(() => ''), 10);
    if (pid > 0) {
      try {
        if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.execRoot)) process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    // the daemon's own isolation jump, if it did not get to remove it (kill -9)
    for (let i = 0; i < 8; i++) {
      const r = await exec('iptables', ['-D', 'FORWARD', '-m', 'comment', '--comment', `berth isolation ${this.bridge}`, '-j', 'NETAVARK_ISOLATION_1']).catch(() => undefined);
      if (!r || r.code !== 0) break;
    }
  }

  private async unmountAll(): Promise<void> {
    await unmountUnder(this.dir);
  }

  private async removeCgroups(): Promise<void> {
    for (const h of await fsp.readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
      const base = path.join('/sys/fs/cgroup', h, this.cgroupParent);
      for (const child of await fsp.readdir(base, { withFileTypes: true }).catch(() => [] as fs.Dirent[])) {
        if (child.isDirectory()) await fsp.rmdir(path.join(base, child.name)).catch(() => {});
      }
      await fsp.rmdir(base).catch(() => {});
    }
  }
}

/** Polls until fn returns a truthy value or the time runs out. */
export async function eventually<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Lazily unmounts everything mounted below dir, deepest first. */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await fsp.readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m && m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await exec('umount', ['-l', m]).catch(() => {});
}

/** GET a URL from the host; the body as text. */
export function httpGet(url: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}
