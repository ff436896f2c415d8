/**
 * The fast exec path (berth-nsexec, used for attached non-tty sessions) must
 * confine a process exactly as `runc exec` does. Each check runs the same
 * command both ways through the real docker CLI: `docker exec C ...` (the
 * helper) and `docker exec -t C ...` (conmon + runc exec), and compares them
 * with each other and with the container's own process: capabilities,
 * no_new_privs, the seccomp filter (the BPF itself, read with ptrace),
 * users and groups, cgroups, namespaces, cwd, env, rlimits, exit codes,
 * streams, signals, and the states that refuse an exec.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import { REPO, TestDaemon, eventually, exec } from '../helpers/daemon.js';

const STATUS_FIELDS = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp', 'Seccomp_filters', 'SigBlk', 'SigIgn', 'SigCgt'];

function statusFields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(.*)$/.exec(line.trim());
    if (m && STATUS_FIELDS.includes(m[1])) out[m[1]] = m[2];
  }
  return out;
}

/** A BPF program (hex) split at the end of runc's -ENOSYS stub ("ja 1; ret ERRNO(ENOSYS)"). */
function splitStub(hex: string): { stub: string[]; rest: string } {
  const insns = hex.match(/.{16}/g) ?? [];
  const end = insns.findIndex((x, i) => x === '0500000001000000' && insns[i + 1] === '0600000026000500');
  assert.ok(end >= 0, 'the filter carries runc\'s -ENOSYS stub');
  return { stub: insns.slice(0, end + 2), rest: insns.slice(end + 2).join('') };
}

/** The stub's instructions without their jump offsets (runc orders its arch sections at random). */
function stubShape(stub: string[]): string[] {
  // code (2 bytes), jt, jf, k (4 bytes): an unconditional jump's k is an offset too
  return stub.map((x) => (x.startsWith('0500') ? 'ja' : `${x.slice(0, 4)}:${x.slice(8)}`)).sort();
}

describe('exec isolation: the helper path confines like runc exec', () => {
  let d: TestDaemon;
  let dumper: string;
  const background: ChildProcess[] = [];

  before(async () => {
    d = await TestDaemon.start();
    dumper = path.join(d.dir, 'seccomp-dump');
    const cc = await exec('gcc', ['-O2', '-o', dumper, path.join(REPO, 'test/fixtures/seccomp-dump.c')]);
    assert.equal(cc.code, 0, cc.stderr);
  });
  after(async () => {
    for (const c of background) if (c.exitCode === null) c.kill('SIGKILL');
    await d.cleanup();
  });

  const ok = async (args: string[], input?: string): Promise<string> => {
    const r = await d.docker(args, input !== undefined ? { input } : {});
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** The same exec through the helper (no tty) and through conmon + runc exec (-t). */
  const both = async (opts: string[], container: string, cmd: string[]): Promise<{ fast: string; runc: string }> => {
    const fast = await ok(['exec', ...opts, container, ...cmd]);
    const runc = (await ok(['exec', '-t', ...opts, container, ...cmd])).replace(/\r\n/g, '\n');
    return { fast, runc };
  };
  const helperSessions = async (): Promise<number> => ((await d.log()).match(/"exec session ended".*"path":"nsexec"/g) ?? []).length;
  const inspect = async (name: string): Promise<{ Id: string; State: { Pid: number }; Config: { Hostname: string }; NetworkSettings: { IPAddress: string }; ExecIDs: string[] | null }> =>
    JSON.parse(await ok(['inspect', name]))[0];
  /** Starts `docker exec C cmd` in the background; resolves with the exec'd pid. */
  const execInBackground = async (container: string, cmd: string[], tty = false): Promise<{ pid: number; proc: ChildProcess; execId: string }> => {
    const before = new Set((await inspect(container)).ExecIDs ?? []);
    const proc = spawn('docker', ['exec', ...(tty ? ['-t'] : []), container, ...cmd], { env: d.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    background.push(proc);
    return eventually(async () => {
      for (const id of (await inspect(container)).ExecIDs ?? []) {
        if (before.has(id)) continue;
        const info = await d.client.json<{ Pid: number; Running: boolean }>('GET', `/exec/${id}/json`);
        if (info.Running && info.Pid > 0) return { pid: info.Pid, proc, execId: id };
      }
      return undefined;
    }, 10_000, `exec ${cmd.join(' ')} running`);
  };

  test('capabilities, no_new_privs and seccomp mode match runc exec, for the default set, cap-add/drop, privileged, exec --privileged, -u', async () => {
    await ok(['run', '-d', '--name', 'plain', 'busybox', 'sleep', '300']);
    await ok(['run', '-d', '--name', 'tuned', '--cap-add', 'NET_ADMIN', '--cap-add', 'SYS_PTRACE', '--cap-drop', 'CHOWN', '--security-opt', 'no-new-privileges', 'busybox', 'sleep', '300']);
    await ok(['run', '-d', '--name', 'priv', '--privileged', 'busybox', 'sleep', '300']);
    const sessions = await helperSessions();
    const status = ['cat', '/proc/self/status'];
    const own = /^CapBnd:\s+([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1];

    const plain = await both([], 'plain', status);
    assert.deepEqual(statusFields(plain.fast), statusFields(plain.runc));
    assert.deepEqual(statusFields(plain.fast), {
      CapInh: '0000000000000000', CapPrm: '00000000a80425fb', CapEff: '00000000a80425fb', CapBnd: '00000000a80425fb',
      CapAmb: '0000000000000000', NoNewPrivs: '0', Seccomp: '2', Seccomp_filters: '1',
      SigBlk: '0000000000000000', SigIgn: '0000000000000000', SigCgt: '0000000000000000',
    });
    // the container's own process, started by runc run
    const initStatus = statusFields(await fsp.readFile(`/proc/${(await inspect('plain')).State.Pid}/status`, 'utf8'));
    assert.deepEqual(statusFields(plain.fast), initStatus);

    const tuned = await both([], 'tuned', status);
    assert.deepEqual(statusFields(tuned.fast), statusFields(tuned.runc));
    const caps = BigInt(`0x${statusFields(tuned.fast).CapEff}`);
    assert.equal((caps >> 12n) & 1n, 1n, 'NET_ADMIN added');
    assert.equal(caps & 1n, 0n, 'CHOWN dropped');
    assert.equal(statusFields(tuned.fast).NoNewPrivs, '1');

    const priv = await both([], 'priv', status);
    assert.deepEqual(statusFields(priv.fast), statusFields(priv.runc));
    assert.equal(statusFields(priv.fast).CapEff, own, 'a privileged container has every capability the daemon has');
    assert.equal(statusFields(priv.fast).Seccomp, '0', 'and no seccomp filter');

    const privExec = await both(['--privileged'], 'plain', status);
    assert.deepEqual(statusFields(privExec.fast), statusFields(privExec.runc));
    assert.equal(statusFields(privExec.fast).CapEff, own);
    assert.equal(statusFields(privExec.fast).Seccomp, '2', 'exec --privileged keeps the container\'s seccomp filter');

    const user = await both(['-u', '1000:1000'], 'plain', status);
    assert.deepEqual(statusFields(user.fast), statusFields(user.runc));
    assert.ok(await helperSessions() >= sessions + 5, 'the plain execs ran through the helper');
  });

  test('the seccomp filter is the one runc loads: same BPF as runc exec and the container\'s init', async () => {
    const fast = await execInBackground('plain', ['sleep', '31']);
    await ok(['exec', '-d', 'plain', 'sleep', '32']);
    const runcPid = await eventually(async () => {
      for (const id of (await inspect('plain')).ExecIDs ?? []) {
        const info = await d.client.json<{ Pid: number; Running: boolean; ProcessConfig: { arguments: string[] } }>('GET', `/exec/${id}/json`);
        if (info.Running && info.ProcessConfig.arguments[0] === '32') return info.Pid;
      }
      return undefined;
    }, 10_000, 'detached exec running');
    const dump = async (pid: number): Promise<string> => {
      const r = await exec(dumper, [String(pid)]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, 1, 'exactly one filter');
      return lines[0];
    };
    const ours = splitStub(await dump(fast.pid));
    for (const other of [await dump(runcPid), await dump((await inspect('plain')).State.Pid)]) {
      const theirs = splitStub(other);
      assert.equal(ours.rest, theirs.rest, 'the libseccomp program is identical');
      assert.equal(ours.stub.length, theirs.stub.length);
      assert.deepEqual(stubShape(ours.stub), stubShape(theirs.stub), 'the -ENOSYS stub has the same checks');
    }
    fast.proc.kill('SIGKILL');
    // a profile filtered for other capabilities (SYS_PTRACE allows more; no_new_privs): still the init's filter
    const tuned = await execInBackground('tuned', ['sleep', '33']);
    const tunedOurs = splitStub(await dump(tuned.pid));
    const tunedInit = splitStub(await dump((await inspect('tuned')).State.Pid));
    assert.equal(tunedOurs.rest, tunedInit.rest);
    assert.deepEqual(stubShape(tunedOurs.stub), stubShape(tunedInit.stub));
    assert.notEqual(tunedOurs.rest, ours.rest, 'the two profiles differ');
    tuned.proc.kill('SIGKILL');
  });

  test('a syscall the profile blocks fails inside the exec; privileged and unconfined containers allow it', async () => {
    for (const opts of [[], ['-t']]) {
      const r = await d.docker(['exec', ...opts, 'plain', 'unshare', '-U', 'true']);
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, /Operation not permitted/);
    }
    await ok(['exec', 'priv', 'unshare', '-U', 'true']);
    await ok(['run', '-d', '--name', 'unconfined', '--security-opt', 'seccomp=unconfined', 'busybox', 'sleep', '300']);
    await ok(['exec', 'unconfined', 'unshare', '-U', 'true']);
    assert.equal(statusFields(await ok(['exec', 'unconfined', 'cat', '/proc/self/status'])).Seccomp, '0');
    // and without the capability, mount is refused in both paths
    for (const opts of [[], ['-t']]) {
      const r = await d.docker(['exec', ...opts, 'plain', 'mount', '-t', 'tmpfs', 'x', '/tmp']);
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, /Operation not permitted|permission denied/i);
    }
    await ok(['rm', '-f', 'unconfined']);
  });

  test('users and groups: -u nobody, -u 1000:1000, a passwd user with supplementary groups', async () => {
    await ok(['exec', 'plain', 'sh', '-c', 'echo "alice:x:1001:1001::/home/alice:/bin/sh" >> /etc/passwd; echo "alice:x:1001:" >> /etc/group; echo "crew:x:2000:alice" >> /etc/group; echo "band:x:2001:bob,alice" >> /etc/group']);
    for (const [user, want] of [
      ['nobody', 'uid=65534(nobody) gid=65534(nogroup)'],
      ['1000:1000', 'uid=1000 gid=1000'],
      ['alice', 'uid=1001(alice) gid=1001(alice) groups=2000(crew),2001(band)'],
      ['alice:crew', 'uid=1001(alice) gid=2000(crew)'],
    ]) {
      const r = await both(['-u', user], 'plain', ['id']);
      assert.equal(r.fast.trim(), want, `-u ${user}`);
      assert.equal(r.runc.trim(), want, `-u ${user} (runc exec)`);
    }
    // HOME from the user's passwd entry, and the stdio the user can reopen
    assert.equal((await ok(['exec', '-u', 'alice', 'plain', 'sh', '-c', 'echo $HOME; echo via-dev-stdout > /dev/stdout'])), '/home/alice\nvia-dev-stdout\n');
    const missing = await d.docker(['exec', '-u', 'nosuchuser', 'plain', 'true']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr + missing.stdout, /unable to find user nosuchuser/);
  });

  test('cgroups, pid, uts, net and mount namespaces are the container\'s', async () => {
    await ok(['run', '-d', '--name', 'ns', '--hostname', 'nsbox', 'busybox', 'sh', '-c', 'echo inside > /tmp/marker; exec sleep 300']);
    const info = await inspect('ns');
    const initCgroup = await fsp.readFile(`/proc/${info.State.Pid}/cgroup`, 'utf8');
    const r = await both([], 'ns', ['cat', '/proc/self/cgroup']);
    assert.equal(r.fast, initCgroup, 'the exec\'d process is in every cgroup of the container\'s init');
    assert.equal(r.runc, initCgroup);

    const ps = await ok(['exec', 'ns', 'ps', '-o', 'pid,args']);
    const rows = ps.trim().split('\n').slice(1).map((l) => l.trim());
    assert.match(rows[0], /^1 sleep 300$/, 'pid 1 is the container\'s command');
    assert.ok(rows.length <= 3, `only the container's processes are visible: ${ps}`);
    assert.doesNotMatch(ps, /berthd|node|dockerd/);

    const hostname = await both([], 'ns', ['hostname']);
    assert.equal(hostname.fast, 'nsbox\n');
    assert.equal(hostname.runc, 'nsbox\n');

    const addr = await both([], 'ns', ['ip', '-4', '-o', 'addr', 'show', 'eth0']);
    assert.ok(info.NetworkSettings.IPAddress, 'the container has an address');
    assert.match(addr.fast, new RegExp(`inet ${info.NetworkSettings.IPAddress.replace(/\./g, '\\.')}/`));
    assert.equal(addr.fast, addr.runc);
    const links = await both([], 'ns', ['cat', '/proc/net/dev']);
    assert.deepEqual(links.fast.split('\n').map((l) => l.split(':')[0].trim()).sort(), links.runc.split('\n').map((l) => l.split(':')[0].trim()).sort());

    assert.equal(await ok(['exec', 'ns', 'cat', '/tmp/marker']), 'inside\n', 'the container\'s files');
    const hostOnly = await d.docker(['exec', 'ns', 'ls', REPO]);
    assert.notEqual(hostOnly.code, 0, 'not the host\'s');
    const nsLinks = await both([], 'ns', ['sh', '-c', 'for n in mnt net pid uts ipc cgroup; do readlink /proc/self/ns/$n; done']);
    const initLinks = ['mnt', 'net', 'pid', 'uts', 'ipc', 'cgroup'].map((n) => fs.readlinkSync(`/proc/${info.State.Pid}/ns/${n}`)).join('\n') + '\n';
    assert.equal(nsLinks.fast, initLinks);
    assert.equal(nsLinks.runc, initLinks);
  });

  test('cwd, env, rlimits and oom_score_adj follow the container and the exec options', async () => {
    await ok(['run', '-d', '--name', 'envbox', '-w', '/srv', '-e', 'FROMRUN=a', '--ulimit', 'nofile=1024:2048', '--ulimit', 'nproc=500:600', '--oom-score-adj', '123', 'busybox', 'sleep', '300']);
    const cwd = await both([], 'envbox', ['pwd']);
    assert.equal(cwd.fast, '/srv\n', 'the container\'s WORKDIR');
    assert.equal(cwd.runc, '/srv\n');
    const w = await both(['-w', '/tmp'], 'envbox', ['pwd']);
    assert.equal(w.fast, '/tmp\n');
    assert.equal(w.runc, '/tmp\n');
    const env = await both(['-e', 'X=1', '-e', 'FROMRUN=b'], 'envbox', ['env']);
    const clean = (s: string): string[] => s.trim().split('\n').filter((l) => !l.startsWith('TERM=')).sort();
    assert.deepEqual(clean(env.fast), clean(env.runc));
    assert.deepEqual(clean(env.fast), ['FROMRUN=b', 'HOME=/root', `HOSTNAME=${(await inspect('envbox')).Config.Hostname}`, 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'X=1']);
    const limits = await both([], 'envbox', ['sh', '-c', 'ulimit -n; ulimit -Hn; ulimit -u; ulimit -Hu; cat /proc/self/oom_score_adj']);
    assert.equal(limits.fast, '1024\n2048\n500\n600\n123\n');
    // runc 1.1 exec races its own Go runtime, which raises the soft NOFILE limit to the hard one
    assert.match(limits.runc, /^(1024|2048)\n2048\n500\n600\n123\n$/);
    const badCwd = await d.docker(['exec', '-w', '/nonexistent', 'envbox', 'true']);
    assert.notEqual(badCwd.code, 0);
    assert.match(badCwd.stdout + badCwd.stderr, /chdir to cwd \("\/nonexistent"\) set in config.json failed: no such file or directory/);
    const fds = await ok(['exec', 'envbox', 'ls', '/proc/self/fd']);
    assert.deepEqual(fds.trim().split(/\s+/).sort(), ['0', '1', '2', '3'], 'no descriptor of the daemon or the helper leaks in');
    await ok(['rm', '-f', 'envbox']);
  });

  test('exit codes and Docker\'s messages: 0, 3, 126, 127; a process killed by SIGKILL is 137', async () => {
    for (const opts of [[], ['-t']]) {
      assert.equal((await d.docker(['exec', ...opts, 'plain', 'true'])).code, 0);
      assert.equal((await d.docker(['exec', ...opts, 'plain', 'sh', '-c', 'exit 3'])).code, 3);
      const nope = await d.docker(['exec', ...opts, 'plain', 'nope']);
      assert.equal(nope.code, 127);
      assert.match(nope.stdout + nope.stderr, /OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": executable file not found in \$PATH: unknown/);
      const notExec = await d.docker(['exec', ...opts, 'plain', '/etc/passwd']);
      assert.equal(notExec.code, 126);
      assert.match(notExec.stdout + notExec.stderr, /exec: "\/etc\/passwd": permission denied/);
      assert.equal((await d.docker(['exec', ...opts, 'plain', 'sh', '-c', 'kill -9 $$'])).code, 137);
    }
    // the session's events, as with runc exec
    const since = Math.floor(Date.now() / 1000) - 1;
    assert.equal((await d.docker(['exec', 'plain', 'sh', '-c', 'exit 7'])).code, 7);
    const events = await ok(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'container=plain', '--format', '{{.Action}} {{index .Actor.Attributes "exitCode"}}']);
    assert.match(events, /exec_create: sh -c exit 7 \n/);
    assert.match(events, /exec_start: sh -c exit 7 \n/);
    assert.match(events, /exec_die 7\n/);
    const missing = await d.docker(['exec', 'plain', '/no/such']);
    assert.equal(missing.code, 127);
    assert.match(missing.stdout, /exec: "\/no\/such": stat \/no\/such: no such file or directory/);
  });

  test('streams: stdin piped through and closed at its end, large output intact on both streams', async () => {
    assert.equal(await ok(['exec', '-i', 'plain', 'cat'], 'hi\n'), 'hi\n');
    const big = crypto.randomBytes(3 << 20).toString('base64');
    assert.equal((await ok(['exec', '-i', 'plain', 'wc', '-c'], big)).trim(), String(big.length));
    assert.equal(await ok(['exec', '-i', 'plain', 'sh', '-c', 'cat; echo after-eof'], 'x\n'), 'x\nafter-eof\n');
    // a background process holding stdout delays the end by Docker's 2 s grace at most
    const t0 = Date.now();
    assert.equal(await ok(['exec', 'plain', 'sh', '-c', 'sleep 8 & echo started']), 'started\n');
    assert.ok(Date.now() - t0 < 6000, `the stream ended ${Date.now() - t0} ms after the exit`);
    await ok(['exec', 'plain', 'sh', '-c', 'head -c 4000000 /dev/urandom > /tmp/big']);
    const want = (await ok(['exec', 'plain', 'sha256sum', '/tmp/big'])).split(' ')[0];
    const raw = await new Promise<{ out: Buffer; err: Buffer; code: number | null }>((resolve) => {
      const p = spawn('docker', ['exec', 'plain', 'sh', '-c', 'cat /tmp/big; cat /tmp/big >&2'], { env: d.env(), stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      p.stdout.on('data', (b: Buffer) => out.push(b));
      p.stderr.on('data', (b: Buffer) => err.push(b));
      p.on('close', (code) => resolve({ out: Buffer.concat(out), err: Buffer.concat(err), code }));
    });
    assert.equal(raw.code, 0);
    assert.equal(raw.out.length, 4_000_000);
    assert.equal(crypto.createHash('sha256').update(raw.out).digest('hex'), want);
    assert.equal(crypto.createHash('sha256').update(raw.err).digest('hex'), want);
  });

  test('the exec\'d process: its pid in exec inspect and docker top, signals forwarded by the helper, killed by a healthcheck timeout', async () => {
    const s = await execInBackground('plain', ['sleep', '123']);
    assert.ok(fs.readFileSync(`/proc/${s.pid}/cgroup`, 'utf8').includes((await inspect('plain')).Id));
    assert.match(fs.readFileSync(`/proc/${s.pid}/cmdline`, 'utf8'), /^sleep\x00123\x00$/);
    assert.match(await ok(['top', 'plain']), /sleep 123/);
    // the helper is the exec'd process's parent: a SIGTERM to it reaches the process
    const helper = Number(/^PPid:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${s.pid}/status`, 'utf8'))![1]);
    assert.equal(fs.readFileSync(`/proc/${helper}/comm`, 'utf8').trim(), 'berth-nsexec');
    assert.doesNotMatch(fs.readFileSync(`/proc/${helper}/cgroup`, 'utf8'), new RegExp((await inspect('plain')).Id), 'the helper itself stays out of the container\'s cgroups');
    process.kill(helper, 'SIGTERM');
    const code = await new Promise<number | null>((resolve) => s.proc.on('close', resolve));
    assert.equal(code, 143);
    assert.equal((await d.client.json<{ ExitCode: number }>('GET', `/exec/${s.execId}/json`)).ExitCode, 143);

    await ok(['run', '-d', '--name', 'slowcheck', '--health-cmd', 'sleep 77', '--health-interval', '300ms', '--health-timeout', '300ms', '--health-retries', '1', 'busybox', 'sleep', '300']);
    await eventually(async () => JSON.parse(await ok(['inspect', '-f', '{{json .State.Health}}', 'slowcheck']))?.Status === 'unhealthy', 15_000, 'unhealthy after a timeout');
    const health = JSON.parse(await ok(['inspect', '-f', '{{json .State.Health}}', 'slowcheck'])) as { Log: { Output: string }[] };
    assert.match(health.Log.at(-1)!.Output, /exceeded timeout/);
    // the timed-out probes were killed, not left behind
    await new Promise((r) => setTimeout(r, 500));
    const top = await ok(['top', 'slowcheck']);
    assert.ok((top.match(/sleep 77/g) ?? []).length <= 1, `timed-out probes are killed: ${top}`);
    await ok(['rm', '-f', 'slowcheck']);
  });

  test('no exec into a paused or stopped container (409)', async () => {
    await ok(['run', '-d', '--name', 'frozen', 'busybox', 'sleep', '300']);
    await ok(['pause', 'frozen']);
    const paused = await d.docker(['exec', 'frozen', 'true']);
    assert.notEqual(paused.code, 0);
    assert.match(paused.stderr, /is paused/);
    const api = await d.client.raw('POST', '/containers/frozen/exec', { body: { Cmd: ['true'] } });
    assert.equal(api.statusCode, 409);
    api.resume();
    await ok(['unpause', 'frozen']);
    assert.equal(await ok(['exec', 'frozen', 'echo', 'thawed']), 'thawed\n');
    await ok(['stop', '-t', '0', 'frozen']);
    const stopped = await d.docker(['exec', 'frozen', 'true']);
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /is not running/);
    const api2 = await d.client.raw('POST', '/containers/frozen/exec', { body: { Cmd: ['true'] } });
    assert.equal(api2.statusCode, 409);
    api2.resume();
    await ok(['rm', 'frozen']);
  });

  test('a daemon without the helper (--exec-helper none) runs the same execs through runc exec', async () => {
    const plainDaemon = await TestDaemon.start({ args: ['--exec-helper', 'none'] });
    try {
      const r = await plainDaemon.docker(['run', '-d', '--name', 'helperless', 'busybox', 'sleep', '300']);
      assert.equal(r.code, 0, r.stderr);
      const e = await plainDaemon.docker(['exec', 'helperless', 'sh', '-c', 'echo out; echo err >&2; exit 4']);
      assert.equal(e.code, 4);
      assert.equal(e.stdout, 'out\n');
      assert.equal(e.stderr, 'err\n');
      assert.doesNotMatch(await plainDaemon.log(), /"path":"nsexec"/);
      assert.match(await plainDaemon.log(), /"path":"conmon"/);
    } finally {
      await plainDaemon.cleanup();
    }
  });
});
