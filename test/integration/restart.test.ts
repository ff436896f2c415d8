/**
 * Containers outlive berthd: stopped with SIGTERM or killed with SIGKILL,
 * the daemon comes back and finds them (ps, logs -f, stop), records exits
 * that happened while it was down, and recovers after a simulated host
 * reboot (every monitor and container gone).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { TestDaemon, busyboxRootfsTar, eventually, exec } from '../helpers/daemon.js';

describe('daemon restarts', () => {
  let d: TestDaemon;
  before(async () => {
    d = await TestDaemon.start();
  });
  after(async () => {
    await d.cleanup();
  });

  const state = async (name: string): Promise<{ Status: string; Running: boolean; ExitCode: number; Pid: number }> =>
    JSON.parse((await d.docker(['inspect', '-f', '{{json .State}}', name])).stdout);

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    test(`running containers survive berthd ${signal}`, async () => {
      const name = `survivor-${signal.toLowerCase()}`;
      const run = await d.docker(['run', '-d', '--name', name, 'busybox', 'sh', '-c', 'trap "exit 0" TERM; i=0; while true; do echo beat$i; i=$((i+1)); sleep 0.2; done']);
      assert.equal(run.code, 0, run.stderr);
      const pid = (await state(name)).Pid;
      const code = await d.stopDaemon(signal);
      if (signal === 'SIGTERM') assert.equal(code, 0, 'berthd exits 0 on SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(d.cgroupParent), 'the container kept running without berthd');
      await d.launch();
      const s = await state(name);
      assert.equal(s.Running, true);
      assert.equal(s.Pid, pid);
      assert.match((await d.docker(['ps', '--format', '{{.Names}}'])).stdout, new RegExp(`^${name}$`, 'm'));
      // logs written while the daemon was down are there, and -f follows new ones
      const logs = await d.docker(['logs', name]);
      assert.ok(logs.stdout.split('\n').length > 3);
      const follow = d.docker(['logs', '-f', '--tail', '0', name]);
      await new Promise((r) => setTimeout(r, 700));
      assert.equal((await d.docker(['stop', name])).code, 0);
      const followed = await follow;
      assert.match(followed.stdout, /beat\d+/, 'logs -f saw new lines and ended when the container stopped');
      const after = await state(name);
      assert.equal(after.Status, 'exited');
      assert.equal(after.ExitCode, 0);
      assert.ok(!(fs.existsSync(`/proc/${pid}/cgroup`) && fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(d.cgroupParent)));
      await d.docker(['rm', name]);
    });
  }

  test("conmon (of a container and of an exec session) leaves berthd's cgroups", async (t) => {
    const own = (pid: number): Map<string, string> =>
      new Map(
        fs
          .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
          .trim()
          .split('\n')
          .map((l) => l.split(':'))
          .filter(([, controllers]) => controllers !== '')
          .map(([, controllers, cgPath]) => [controllers, cgPath]),
      );
    const daemonCgroups = [...own(d.pid!)].filter(([, p]) => p !== '/');
    if (daemonCgroups.length === 0) return t.skip('berthd runs in the root cgroups here: nothing to leave');
    const id = (await d.docker(['run', '-d', 'busybox', 'sleep', '60'])).stdout.trim();
    const exec = await d.docker(['exec', '-d', id, 'sleep', '60']);
    assert.equal(exec.code, 0, exec.stderr);
    const execDirs = fs.readdirSync(path.join(d.execRoot, 'exec'));
    const conmons = [
      Number(fs.readFileSync(path.join(d.execRoot, 'containers', id, 'conmon.pid'), 'utf8')),
      ...execDirs.map((e) => Number(fs.readFileSync(path.join(d.execRoot, 'exec', e, 'conmon.pid'), 'utf8'))),
    ];
    assert.equal(conmons.length, 2);
    // the move happens just after the start (off its path): give it a moment
    const deadline = Date.now() + 3000;
    for (const pid of conmons) {
      const moved = (): boolean => daemonCgroups.every(([controllers]) => own(pid).get(controllers) === '/');
      while (!moved() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(moved(), `conmon ${pid} is still in ${JSON.stringify([...own(pid)])}`);
    }
    await d.docker(['rm', '-f', id]);
  });

  test('an exit that happens while berthd is down is recorded with its code', async () => {
    const run = await d.docker(['run', '-d', '--name', 'quitter', 'busybox', 'sh', '-c', 'sleep 1; exit 7']);
    assert.equal(run.code, 0, run.stderr);
    await d.stopDaemon('SIGKILL');
    await new Promise((r) => setTimeout(r, 2000));
    await d.launch();
    await eventually(async () => (await state('quitter')).Status === 'exited', 10_000, 'exit recorded');
    assert.equal((await state('quitter')).ExitCode, 7);
    assert.match((await d.docker(['ps', '-a', '--filter', 'name=quitter', '--format', '{{.Status}}'])).stdout, /^Exited \(7\)/);
    // and it can be started again
    assert.equal((await d.docker(['start', 'quitter'])).code, 0);
    assert.equal((await d.docker(['wait', 'quitter'])).stdout.trim(), '7');
    await d.docker(['rm', 'quitter']);
  });

  test('an auto-remove container that exits while berthd is down is removed on restart', async () => {
    const id = (await d.docker(['run', '-d', '--rm', 'busybox', 'sh', '-c', 'sleep 1'])).stdout.trim();
    await d.stopDaemon('SIGKILL');
    await new Promise((r) => setTimeout(r, 1800));
    await d.launch();
    await eventually(async () => (await d.docker(['inspect', id])).code !== 0, 10_000, 'auto-removal');
  });

  test('a start cut short between runc create and the record (kill -9) does not keep the container from starting', async () => {
    const id = (await d.docker(['create', '--name', 'half-started', 'busybox', 'echo', 'started at last'])).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    // what the cut leaves: runc's container under that id, its record still "created"
    const probe = (await d.docker(['run', '-d', 'busybox', 'sleep', '60'])).stdout.trim();
    const spec = JSON.parse(await fsp.readFile(path.join(d.execRoot, 'containers', probe, 'config.json'), 'utf8'));
    await d.docker(['rm', '-f', probe]);
    await d.stopDaemon('SIGKILL');
    const bundle = await fsp.mkdtemp('/tmp/bt-leftover-');
    try {
      const rootfs = path.join(bundle, 'rootfs');
      await fsp.mkdir(rootfs);
      assert.equal((await exec('tar', ['-x', '-C', rootfs], { input: await busyboxRootfsTar() })).code, 0);
      spec.root.path = rootfs;
      spec.mounts = spec.mounts.filter((m: { destination: string }) => !m.destination.startsWith('/etc/'));
      for (const ns of spec.linux.namespaces as { path?: string }[]) delete ns.path;
      spec.linux.cgroupsPath = `${d.cgroupParent}/leftover`;
      await fsp.writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
      // the container's init keeps runc's stdio: a file, not a pipe that would never end
      const errFile = path.join(bundle, 'runc.err');
      const errFd = fs.openSync(errFile, 'w');
      const created = spawnSync('runc', ['--root', path.join(d.execRoot, 'runc'), 'create', '--bundle', bundle, id], { stdio: ['ignore', errFd, errFd], timeout: 30_000 });
      fs.closeSync(errFd);
      assert.equal(created.status, 0, fs.readFileSync(errFile, 'utf8'));

      await d.launch();
      const start = await d.docker(['start', '-a', 'half-started']);
      assert.equal(start.code, 0, start.stderr);
      assert.equal(start.stdout.trim(), 'started at last');
      await d.docker(['rm', 'half-started']);
    } finally {
      await exec('runc', ['--root', path.join(d.execRoot, 'runc'), 'delete', '--force', id]);
      await fsp.rm(bundle, { recursive: true, force: true });
    }
  });

  test('after a simulated host reboot containers are stopped, except those whose restart policy starts them', async () => {
    await d.docker(['run', '-d', '--name', 'reboot-a', 'busybox', 'sleep', '1000']);
    await d.docker(['run', '-d', '--name', 'reboot-b', '--memory', '64m', 'busybox', 'sleep', '1000']);
    await d.docker(['run', '-d', '--name', 'reboot-always', '--restart', 'always', 'busybox', 'sleep', '1000']);
    await d.docker(['run', '-d', '--name', 'reboot-unless', '--restart', 'unless-stopped', 'busybox', 'sleep', '1000']);
    await d.docker(['run', '-d', '--name', 'reboot-stopped', '--restart', 'unless-stopped', 'busybox', 'sleep', '1000']);
    assert.equal((await d.docker(['stop', '-t', '0', 'reboot-stopped'])).code, 0);
    const pids = await Promise.all(['reboot-a', 'reboot-b', 'reboot-always', 'reboot-unless'].map(async (n) => (await state(n)).Pid));
    await d.stopDaemon('SIGKILL');
    // the "reboot": every monitor and container process of this daemon dies, mounts go away
    const bundles = path.join(d.execRoot, 'containers');
    for (const id of await fsp.readdir(bundles)) {
      const conmon = parseInt(await fsp.readFile(path.join(bundles, id, 'conmon.pid'), 'utf8').catch(() => '0'), 10);
      if (conmon > 0 && fs.readFileSync(`/proc/${conmon}/cmdline`, 'utf8').includes(id)) process.kill(conmon, 'SIGKILL');
    }
    for (const pid of pids) {
      // only if the pid is still a process of this daemon's containers: pids are reused fast here
      const cgroup = await fsp.readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
      if (!cgroup.includes(d.cgroupParent)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone with its monitor
      }
    }
    await eventually(
      () => pids.every((p) => !(fs.existsSync(`/proc/${p}/cgroup`) && fs.readFileSync(`/proc/${p}/cgroup`, 'utf8').includes(d.cgroupParent))),
      5000,
      'processes gone',
    );
    // mounts go away with the reboot: rootfs overlays, network namespaces
    for (const line of (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
      const mnt = line.split(' ')[4];
      if (mnt && (mnt.startsWith(path.join(d.dataRoot, 'containers')) || mnt.startsWith(d.execRoot))) await exec('umount', ['-l', mnt]);
    }
    await fsp.rm(d.execRoot, { recursive: true, force: true }); // /run is a tmpfs on a real host
    await d.launch();
    for (const name of ['reboot-a', 'reboot-b', 'reboot-stopped']) {
      const s = await state(name);
      assert.equal(s.Running, false, `${name} is not running after the reboot`);
      assert.equal(s.Status, 'exited');
    }
    for (const name of ['reboot-always', 'reboot-unless']) {
      await eventually(async () => (await state(name)).Status === 'running', 10_000, `${name} started again by its restart policy`);
    }
    assert.equal((await d.docker(['start', 'reboot-a', 'reboot-b'])).code, 0);
    assert.equal((await state('reboot-b')).Running, true);
    assert.equal((await d.docker(['rm', '-f', 'reboot-a', 'reboot-b', 'reboot-always', 'reboot-unless', 'reboot-stopped'])).code, 0);
    const leftovers = (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(d.dataRoot));
    assert.deepEqual(leftovers, [], 'no mounts left behind');
  });

  test('a kill -9 during a burst of creates leaves state the next start reads', async () => {
    const creates = Array.from({ length: 8 }, (_x, i) => d.docker(['create', '--name', `burst${i}`, 'busybox', 'true']));
    await new Promise((r) => setTimeout(r, 150));
    await d.stopDaemon('SIGKILL');
    await Promise.allSettled(creates);
    await d.launch();
    const list = await d.docker(['ps', '-a', '--filter', 'name=burst', '--format', '{{.Names}}']);
    assert.equal(list.code, 0, list.stderr);
    for (const name of list.stdout.trim().split('\n').filter(Boolean)) {
      assert.equal((await d.docker(['start', name])).code, 0, `${name} starts`);
      assert.equal((await d.docker(['rm', '-f', name])).code, 0);
    }
    // no orphaned writable layers
    const active = await fsp.readdir(path.join(d.dataRoot, 'snapshots', 'active'));
    const containers = (await d.docker(['ps', '-aq', '--no-trunc'])).stdout.trim().split('\n').filter(Boolean);
    assert.deepEqual(active.sort(), containers.sort());
  });
});
