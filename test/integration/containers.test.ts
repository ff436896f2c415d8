/**
 * Containers through the real docker CLI and the berth CLI against a real
 * berthd: run/exit codes, logs, ps, inspect, stop/kill/rm/rename/pause,
 * resources in cgroup files, isolation, config (user, workdir, env, init),
 * host/none networking, log rotation and start failures.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { TestDaemon, eventually } from '../helpers/daemon.js';

describe('containers', () => {
  let d: TestDaemon;
  before(async () => {
    d = await TestDaemon.start();
  });
  after(async () => {
    await d.cleanup();
  });

  const inspect = async (name: string): Promise<Record<string, any>> => {
    const r = await d.docker(['inspect', name]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout)[0];
  };

  test('docker run prints output and returns exit codes 0, 3, 127, 126', async () => {
    const hi = await d.docker(['run', '--rm', 'busybox', 'echo', 'hi']);
    assert.equal(hi.code, 0, hi.stderr);
    assert.equal(hi.stdout, 'hi\n');
    const three = await d.docker(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(three.code, 3);
    assert.equal(three.stdout, 'out\n');
    assert.equal(three.stderr, 'err\n');
    const notFound = await d.docker(['run', '--rm', 'busybox', 'no-such-command']);
    assert.equal(notFound.code, 127);
    assert.match(notFound.stderr, /executable file not found/);
    const notExec = await d.docker(['run', '--rm', 'busybox', '/etc/passwd']);
    assert.equal(notExec.code, 126, notExec.stderr);
    // --rm also removes containers that failed to start
    const left = await d.docker(['ps', '-a', '-q']);
    assert.equal(left.stdout.trim(), '');
  });

  test('berth run behaves the same', async () => {
    const hi = await d.berth(['run', '--rm', 'busybox', 'echo', 'hi']);
    assert.equal(hi.code, 0, hi.stderr);
    assert.equal(hi.stdout, 'hi\n');
    const three = await d.berth(['run', '--rm', 'busybox', 'sh', '-c', 'echo err >&2; exit 3']);
    assert.equal(three.code, 3);
    assert.equal(three.stderr, 'err\n');
    const nf = await d.berth(['run', '--rm', 'busybox', 'no-such-command']);
    assert.equal(nf.code, 127);
    const noImage = await d.berth(['run', '--rm', '--pull', 'never', 'nope:1', 'true']);
    assert.equal(noImage.code, 125);
    assert.match(noImage.stderr, /No such image: nope:1/);
  });

  test('a failed start without --rm records the error and exit code', async () => {
    const r = await d.docker(['run', '--name', 'failed', 'busybox', 'no-such-command']);
    assert.equal(r.code, 127);
    const c = await inspect('failed');
    assert.equal(c.State.ExitCode, 127);
    assert.match(c.State.Error, /executable file not found/);
    assert.equal(c.State.Running, false);
    await d.docker(['rm', 'failed']);
  });

  test('detached containers: ps, logs, inspect, stop, rm', async () => {
    const run = await d.docker(['run', '-d', '--name', 'chatty', '-l', 'role=test', 'busybox', 'sh', '-c', 'trap "echo bye; exit 0" TERM; i=0; while true; do echo out$i; echo err$i >&2; i=$((i+1)); sleep 0.1; done']);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    assert.match(id, /^[a-f0-9]{64}$/);
    await eventually(async () => (await d.docker(['logs', 'chatty'])).stdout.includes('out3'), 10_000, 'log output');
    const ps = await d.docker(['ps', '--format', '{{.ID}}|{{.Names}}|{{.Image}}|{{.Status}}|{{.Label "role"}}']);
    assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)}\\|chatty\\|busybox\\|Up .*\\|test$`, 'm'));
    const logs = await d.docker(['logs', 'chatty']);
    assert.match(logs.stdout, /^out0\nout1\n/);
    assert.match(logs.stderr, /^err0\nerr1\n/);
    const tail = await d.docker(['logs', '--tail', '1', 'chatty']);
    assert.equal(tail.stdout.trim().split('\n').length + tail.stderr.trim().split('\n').length, 1 + (tail.stderr ? 1 : 0) || 1);
    const ts = await d.docker(['logs', '-t', '--tail', '2', 'chatty']);
    assert.match(ts.stdout + ts.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (out|err)\d+$/m);
    const c = await inspect('chatty');
    assert.equal(c.Name, '/chatty');
    assert.equal(c.State.Status, 'running');
    assert.equal(c.State.Running, true);
    assert.ok(c.State.Pid > 0);
    assert.equal(c.State.FinishedAt, '0001-01-01T00:00:00Z');
    assert.match(c.Created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.equal(c.Config.Labels.role, 'test');
    assert.equal(c.HostConfig.LogConfig.Type, 'json-file');
    assert.ok(fs.existsSync(`/proc/${c.State.Pid}`));
    const rmRunning = await d.docker(['rm', 'chatty']);
    assert.notEqual(rmRunning.code, 0);
    assert.match(rmRunning.stderr, /stop the container before removing or force remove/);
    const stop = await d.docker(['stop', 'chatty']);
    assert.equal(stop.code, 0, stop.stderr);
    const stopped = await inspect('chatty');
    assert.equal(stopped.State.Status, 'exited');
    assert.equal(stopped.State.ExitCode, 0, 'the TERM trap ran');
    assert.match((await d.docker(['logs', '--tail', '1', 'chatty'])).stdout, /bye/);
    assert.match((await d.docker(['ps', '-a', '--filter', 'name=chatty', '--format', '{{.Status}}'])).stdout, /^Exited \(0\) /);
    const again = await d.docker(['stop', 'chatty']);
    assert.equal(again.code, 0, 'stopping a stopped container is not an error (304)');
    assert.equal((await d.docker(['rm', 'chatty'])).code, 0);
    assert.equal((await d.docker(['inspect', 'chatty'])).code, 1);
  });

  test('logs -f follows until the container exits', async () => {
    const id = (await d.docker(['run', '-d', 'busybox', 'sh', '-c', 'for i in 1 2 3; do echo tick$i; sleep 0.3; done'])).stdout.trim();
    const f = await d.docker(['logs', '-f', id]);
    assert.equal(f.code, 0);
    assert.equal(f.stdout, 'tick1\ntick2\ntick3\n');
    await d.docker(['rm', id]);
  });

  test('kill with a signal, stop timeout escalation, restart, pause, rename, wait', async () => {
    await d.docker(['run', '-d', '--name', 'sig', 'busybox', 'sh', '-c', 'trap "echo got-usr1" USR1; while true; do sleep 0.1; done']);
    assert.equal((await d.docker(['kill', '-s', 'USR1', 'sig'])).code, 0);
    await eventually(async () => (await d.docker(['logs', 'sig'])).stdout.includes('got-usr1'), 10_000, 'USR1 trap');
    const badSig = await d.docker(['kill', '-s', 'NOPE', 'sig']);
    assert.notEqual(badSig.code, 0);
    assert.match(badSig.stderr, /Invalid signal/);
    // TERM is ignored by sh as pid 1 without a trap for it: stop escalates to KILL
    const t0 = Date.now();
    assert.equal((await d.docker(['stop', '-t', '1', 'sig'])).code, 0);
    assert.ok(Date.now() - t0 >= 900);
    assert.equal((await inspect('sig')).State.ExitCode, 137);
    const killStopped = await d.docker(['kill', 'sig']);
    assert.notEqual(killStopped.code, 0);
    assert.match(killStopped.stderr, /is not running/);

    const startedBefore = (await inspect('sig')).State.StartedAt;
    assert.equal((await d.docker(['start', 'sig'])).code, 0);
    assert.equal((await inspect('sig')).State.Running, true);
    assert.equal((await d.docker(['restart', '-t', '0', 'sig'])).code, 0);
    const restarted = await inspect('sig');
    assert.equal(restarted.State.Running, true);
    assert.notEqual(restarted.State.StartedAt, startedBefore);

    assert.equal((await d.docker(['pause', 'sig'])).code, 0);
    const paused = await inspect('sig');
    assert.equal(paused.State.Paused, true);
    assert.equal(paused.State.Status, 'paused');
    assert.match((await d.docker(['ps', '--filter', 'name=sig', '--format', '{{.Status}}'])).stdout, /\(Paused\)/);
    const freezer = fs.readFileSync(`/sys/fs/cgroup/freezer${d.cgroupParent}/${paused.Id}/freezer.state`, 'utf8').trim();
    assert.equal(freezer, 'FROZEN');
    assert.equal((await d.docker(['unpause', 'sig'])).code, 0);
    assert.equal((await inspect('sig')).State.Paused, false);

    assert.equal((await d.docker(['rename', 'sig', 'sig2'])).code, 0);
    assert.equal((await inspect('sig2')).Name, '/sig2');

    const waiter = d.docker(['wait', 'sig2']);
    await new Promise((r) => setTimeout(r, 200));
    await d.docker(['kill', 'sig2']);
    const w = await waiter;
    assert.equal(w.stdout.trim(), '137');
    assert.equal((await d.docker(['rm', '-f', 'sig2'])).code, 0);
  });

  test('ps filters and formats', async () => {
    await d.docker(['run', '--name', 'f-exit2', '-l', 'grp=a', 'busybox', 'sh', '-c', 'exit 2']);
    await d.docker(['run', '-d', '--name', 'f-run', '-l', 'grp=a', '-l', 'x=y', 'busybox', 'sleep', '60']);
    await d.docker(['create', '--name', 'f-created', 'busybox', 'true']);
    const names = async (...args: string[]): Promise<string[]> =>
      (await d.docker(['ps', ...args, '--format', '{{.Names}}'])).stdout.trim().split('\n').filter(Boolean).sort();
    assert.deepEqual(await names(), ['f-run']);
    assert.deepEqual(await names('-a', '--filter', 'label=grp=a'), ['f-exit2', 'f-run']);
    assert.deepEqual(await names('-a', '--filter', 'label=grp=a', '--filter', 'label=x'), ['f-run']);
    assert.deepEqual(await names('-a', '--filter', 'status=exited'), ['f-exit2']);
    assert.deepEqual(await names('-a', '--filter', 'status=created'), ['f-created']);
    assert.deepEqual(await names('-a', '--filter', 'exited=2'), ['f-exit2']);
    assert.deepEqual(await names('-a', '--filter', 'name=f-c'), ['f-created']);
    assert.deepEqual(await names('-a', '--filter', 'ancestor=busybox', '--filter', 'name=f-'), ['f-created', 'f-exit2', 'f-run']);
    assert.deepEqual(await names('-n', '1'), ['f-created']);
    const bad = await d.docker(['ps', '--filter', 'bogus=1']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid filter/);
    const q = await d.docker(['ps', '-aq', '--filter', 'name=f-run']);
    assert.match(q.stdout.trim(), /^[a-f0-9]{12}$/);
    const berthPs = await d.berth(['ps', '-a', '--filter', 'label=grp=a', '--format', '{{.Names}} {{.State}}']);
    assert.deepEqual(berthPs.stdout.trim().split('\n').sort(), ['f-exit2 exited', 'f-run running']);
    const size = await d.docker(['ps', '-s', '--filter', 'name=f-run', '--format', '{{.Size}}']);
    assert.match(size.stdout, /B \(virtual /);
    const pruned = await d.docker(['container', 'prune', '-f', '--filter', 'label=grp=a']);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.deepEqual(await names('-a', '--filter', 'name=f-'), ['f-created', 'f-run']);
    await d.docker(['rm', '-f', 'f-run', 'f-created']);
  });

  test('resources land in the cgroup files', async () => {
    const r = await d.docker([
      'run', '--rm', '--memory', '64m', '--memory-swap', '128m', '--cpus', '0.5', '--cpu-shares', '512', '--pids-limit', '50', 'busybox',
      'sh', '-c', 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/pids/pids.max',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['67108864', '134217728', '50000', '100000', '512', '50']);
    // and from the host side, under this daemon's cgroup parent
    const id = (await d.docker(['run', '-d', '--memory', '32m', 'busybox', 'sleep', '30'])).stdout.trim();
    const limit = fs.readFileSync(`/sys/fs/cgroup/memory${d.cgroupParent}/${id}/memory.limit_in_bytes`, 'utf8').trim();
    assert.equal(limit, String(32 * 1024 * 1024));
    const hc = (await inspect(id)).HostConfig;
    assert.equal(hc.Memory, 32 * 1024 * 1024);
    assert.equal(hc.MemorySwap, 64 * 1024 * 1024, 'Docker doubles memory for swap when unset');
    await d.docker(['rm', '-f', id]);
    const tooMuch = await d.docker(['run', '--rm', '--cpus', '64', 'busybox', 'true']);
    assert.notEqual(tooMuch.code, 0);
    assert.match(tooMuch.stderr, /Range of CPUs is from 0.01/);
  });

  test('isolation: pid 1, own hostname, namespaces, default capabilities, seccomp, masked paths', async () => {
    const r = await d.docker([
      'run', '--rm', 'busybox', 'sh', '-c',
      'echo pid=$$; hostname; grep -E "^(CapEff|Seccomp|NoNewPrivs):" /proc/self/status; wc -c < /proc/timer_list; touch /proc/sys/x 2>&1 || echo ro-sys; ls /proc | grep -c "^[0-9]"',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], 'pid=1');
    assert.match(lines[1], /^[a-f0-9]{12}$/);
    assert.notEqual(lines[1], os.hostname());
    assert.match(r.stdout, /CapEff:\s+00000000a80425fb/, 'Docker default capability set');
    assert.match(r.stdout, /Seccomp:\s+2/);
    assert.match(r.stdout, /^0$/m, '/proc/timer_list is masked');
    assert.ok(fs.readFileSync('/proc/timer_list', 'utf8').length > 0, 'but not on the host');
    assert.match(r.stdout, /ro-sys|Read-only/);
    assert.ok(Number(lines[lines.length - 1]) <= 3, 'only the shell, ls and grep are visible');
    const ns = await d.docker(['run', '--rm', 'busybox', 'sh', '-c', 'for n in pid mnt uts ipc net; do readlink /proc/self/ns/$n; done']);
    const mine = ['pid', 'mnt', 'uts', 'ipc', 'net'].map((n) => fs.readlinkSync(`/proc/self/ns/${n}`));
    assert.deepEqual(
      ns.stdout.trim().split('\n').map((l, i) => l !== mine[i]),
      [true, true, true, true, true],
    );
    const hostname = await d.docker(['run', '--rm', '-h', 'myhost', 'busybox', 'hostname']);
    assert.equal(hostname.stdout.trim(), 'myhost');
  });

  test('config: user, workdir, env, env-file, entrypoint, init, host and none networks', async () => {
    const envFile = path.join(d.dir, 'env');
    await fsp.writeFile(envFile, '# comment\nFROM_FILE=yes\n');
    const r = await d.docker(['run', '--rm', '-u', 'www-data', '-w', '/made/here', '-e', 'A=1', '--env-file', envFile, 'busybox', 'sh', '-c', 'id -u; id -g; pwd; stat -c %U /made/here; echo $A $FROM_FILE $HOME']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['33', '33', '/made/here', 'www-data', '1 yes /var/www']);
    const numeric = await d.docker(['run', '--rm', '-u', '1234:5678', 'busybox', 'id']);
    assert.match(numeric.stdout, /uid=1234 gid=5678/);
    const noUser = await d.docker(['run', '--rm', '-u', 'nobody-here', 'busybox', 'id']);
    assert.notEqual(noUser.code, 0);
    assert.match(noUser.stderr, /unable to find user nobody-here/);
    const ep = await d.docker(['run', '--rm', '--entrypoint', 'echo', 'busybox', 'via', 'entrypoint']);
    assert.equal(ep.stdout, 'via entrypoint\n');
    const init = await d.docker(['run', '--rm', '--init', 'busybox', 'ps', '-o', 'pid,comm']);
    assert.match(init.stdout, /^\s*1\s+docker-init$/m);
    const none = await d.docker(['run', '--rm', '--network', 'none', 'busybox', 'ls', '/sys/class/net']);
    assert.equal(none.stdout.trim(), 'lo');
    const host = await d.docker(['run', '--rm', '--network', 'host', 'busybox', 'sh', '-c', 'hostname; ls /sys/class/net']);
    assert.equal(host.stdout.trim().split('\n')[0], os.hostname());
    // the host's own interfaces (veths of other containers come and go meanwhile: only the stable ones)
    const uplink = /dev (\S+)/.exec(execFileSync('ip', ['route', 'show', 'default']).toString())?.[1];
    for (const ifname of ['lo', ...(uplink ? [uplink] : [])]) assert.match(host.stdout, new RegExp(`^${ifname}$`, 'm'));
    const etc = await d.docker(['run', '--rm', '--add-host', 'db:10.1.2.3', '--dns', '9.9.9.9', 'busybox', 'sh', '-c', 'cat /etc/hosts /etc/resolv.conf']);
    assert.match(etc.stdout, /10\.1\.2\.3\tdb/);
    assert.match(etc.stdout, /nameserver 9\.9\.9\.9/);
  });

  test('logs are bounded: rotation by size and file count, newest kept', async () => {
    // 40 bursts of 20 lines (~0.8 kB each) against 4 kB files, 3 files kept
    const script = 'i=0; while [ $i -lt 40 ]; do j=0; while [ $j -lt 20 ]; do echo "line-$i-$j-padding-padding"; j=$((j+1)); done; i=$((i+1)); sleep 0.05; done';
    const id = (await d.docker(['run', '-d', '--log-opt', 'max-size=4k', '--log-opt', 'max-file=3', 'busybox', 'sh', '-c', script])).stdout.trim();
    await d.docker(['wait', id]);
    const dir = path.join(d.dataRoot, 'containers', id);
    const files = (await fsp.readdir(dir)).filter((f) => f.startsWith('ctr.log'));
    let total = 0;
    for (const f of files) total += (await fsp.stat(path.join(dir, f))).size;
    assert.ok(total <= 3 * 4096 + 4096, `log files bounded (got ${total} bytes in ${files.join(',')})`);
    const lines = (await d.docker(['logs', id])).stdout.trim().split('\n');
    assert.equal(lines[lines.length - 1], 'line-39-19-padding-padding');
    assert.notEqual(lines[0], 'line-0-0-padding-padding', 'old lines rotated away');
    // what is kept is the newest output, without gaps
    const seq = lines.map((l) => {
      const m = /^line-(\d+)-(\d+)-/.exec(l)!;
      return Number(m[1]) * 20 + Number(m[2]);
    });
    for (let i = 1; i < seq.length; i++) assert.equal(seq[i], seq[i - 1] + 1, `no gap after ${lines[i - 1]}`);
    await d.docker(['rm', id]);
  });

  test('events report the container lifecycle', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    await d.docker(['run', '--rm', '--name', 'evt', 'busybox', 'true']);
    const r = await d.docker(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'container=evt', '--format', '{{.Action}}']);
    assert.equal(r.code, 0, r.stderr);
    const actions = r.stdout.trim().split('\n');
    for (const a of ['create', 'start', 'die', 'destroy']) assert.ok(actions.includes(a), `${a} in ${actions.join(',')}`);
  });
});
