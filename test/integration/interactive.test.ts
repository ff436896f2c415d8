/**
 * Terminals and streams, driven honestly: the real docker CLI in a real
 * pseudo-terminal (tmux send-keys / capture-pane), piped stdin, attach,
 * start -a -i, and exec (hijacked 101 and plain 200 starts, exit codes,
 * inspect right after the stream ends).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { TestDaemon, eventually, exec } from '../helpers/daemon.js';
import { FrameReader } from '../../src/server/stdcopy.js';

class Tmux {
  private static n = 0;
  readonly name = `berth-test-${process.pid}-${Tmux.n++}`;

  static async start(command: string, env: NodeJS.ProcessEnv, width = 120, height = 40): Promise<Tmux> {
    const t = new Tmux();
    const vars = Object.entries(env)
      .filter(([k]) => ['DOCKER_HOST', 'BERTH_HOST', 'DOCKER_CONFIG'].includes(k))
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const r = await exec('tmux', ['new-session', '-d', '-s', t.name, '-x', String(width), '-y', String(height), `${vars} ${command}; echo EXIT=$?; sleep 60`]);
    assert.equal(r.code, 0, r.stderr);
    return t;
  }

  async keys(...keys: string[]): Promise<void> {
    await exec('tmux', ['send-keys', '-t', this.name, ...keys]);
  }

  async type(line: string): Promise<void> {
    await exec('tmux', ['send-keys', '-t', this.name, '-l', line]);
    await exec('tmux', ['send-keys', '-t', this.name, 'Enter']);
  }

  async screen(): Promise<string> {
    return (await exec('tmux', ['capture-pane', '-p', '-t', this.name])).stdout;
  }

  async waitFor(re: RegExp, what: string): Promise<string> {
    return eventually(async () => {
      const s = await this.screen();
      return re.test(s) ? s : undefined;
    }, 15_000, `${what} on screen`);
  }

  async resize(width: number, height: number): Promise<void> {
    await exec('tmux', ['resize-window', '-t', this.name, '-x', String(width), '-y', String(height)]);
  }

  async kill(): Promise<void> {
    await exec('tmux', ['kill-session', '-t', this.name]);
  }
}

function rawExecStart(socket: string, id: string, body: object, upgrade: boolean): Promise<{ status: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { 'Content-Type': 'application/json', 'Content-Length': String(data.length) };
    if (upgrade) Object.assign(headers, { Connection: 'Upgrade', Upgrade: 'tcp' });
    const req = http.request({ socketPath: socket, method: 'POST', path: `/v1.44/exec/${id}/start`, headers });
    let out = '';
    let err = '';
    const reader = new FrameReader((s, d) => (s === 2 ? (err += d.toString()) : (out += d.toString())));
    req.on('upgrade', (res, sock, head) => {
      if (head.length) reader.push(head);
      sock.on('data', (c: Buffer) => reader.push(c));
      sock.on('end', () => resolve({ status: res.statusCode ?? 0, out, err }));
      sock.end();
    });
    req.on('response', (res) => {
      res.on('data', (c: Buffer) => reader.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, out, err }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

describe('interactive containers', () => {
  let d: TestDaemon;
  const sessions: Tmux[] = [];
  before(async () => {
    d = await TestDaemon.start();
  });
  after(async () => {
    for (const s of sessions) await s.kill();
    await d.cleanup();
  });

  const ok = async (args: string[], input?: string): Promise<string> => {
    const r = await d.docker(args, input !== undefined ? { input } : {});
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  test('run -it: prompt, typed input, terminal size and resize, Ctrl-C, exit code', async () => {
    const t = await Tmux.start('docker run -it --rm busybox sh', d.env(), 120, 40);
    sessions.push(t);
    await t.waitFor(/\/ # ?$/m, 'the shell prompt');
    await t.type('echo typed-$((6*7)); stty size');
    await t.waitFor(/typed-42\n40 120/, 'typed input and the terminal size');
    await t.resize(100, 30);
    await new Promise((r) => setTimeout(r, 300));
    await t.type('stty size');
    await t.waitFor(/^30 100$/m, 'the new size after resize');
    await t.type('sleep 100');
    await new Promise((r) => setTimeout(r, 300));
    await t.keys('C-c');
    await t.type('echo after-interrupt');
    await t.waitFor(/^after-interrupt$/m, 'Ctrl-C reached the process');
    await t.type('exit 7');
    await t.waitFor(/EXIT=7/, 'the exit code');
  });

  test('Ctrl-D ends the shell; the detach sequence leaves the container running; attach to it', async () => {
    const t1 = await Tmux.start('docker run -it --rm busybox sh', d.env());
    sessions.push(t1);
    await t1.waitFor(/\/ # ?$/m, 'prompt');
    await t1.keys('C-d');
    await t1.waitFor(/EXIT=0/, 'Ctrl-D ends it');

    const t2 = await Tmux.start('docker run -it --name detachable busybox sh', d.env());
    sessions.push(t2);
    await t2.waitFor(/\/ # ?$/m, 'prompt');
    await t2.type('echo before-detach > /tmp/mark');
    await t2.keys('C-p', 'C-q');
    await t2.waitFor(/EXIT=0/, 'the CLI detached');
    assert.equal((await ok(['inspect', '-f', '{{.State.Running}}', 'detachable'])).trim(), 'true');
    const t3 = await Tmux.start('docker attach detachable', d.env());
    sessions.push(t3);
    await new Promise((r) => setTimeout(r, 500));
    await t3.type('cat /tmp/mark');
    await t3.waitFor(/^before-detach$/m, 'attached again');
    await t3.type('exit 3');
    await t3.waitFor(/EXIT=3/, 'attach ends with the container');
    await ok(['rm', 'detachable']);
  });

  test('run -i without a tty: stdin piped through, end of stdin closes it, output keeps flowing', async () => {
    assert.equal(await ok(['run', '-i', '--rm', 'busybox', 'cat'], 'hi\n'), 'hi\n');
    const lines = Array.from({ length: 2000 }, (_x, i) => `line ${i}`).join('\n') + '\n';
    const counted = await ok(['run', '-i', '--rm', 'busybox', 'sh', '-c', 'wc -l; echo after-eof'], lines);
    assert.equal(counted.trim().split('\n').map((s) => s.trim()).join(','), '2000,after-eof');
    assert.equal((await d.berth(['run', '-i', '--rm', 'busybox', 'tr', 'a-z', 'A-Z'], { input: 'shout\n' })).stdout, 'SHOUT\n');
  });

  test('attach without a tty, start -a and start -a -i', async () => {
    await ok(['run', '-d', '--name', 'ticker', 'busybox', 'sh', '-c', 'for i in 1 2 3 4 5 6; do echo tick$i; sleep 0.3; done']);
    const attached = await ok(['attach', 'ticker']);
    assert.match(attached, /tick6/);
    await ok(['create', '--name', 'once', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 4']);
    const r = await d.docker(['start', '-a', 'once']);
    assert.equal(r.code, 4);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    await ok(['create', '-i', '--name', 'reader', 'busybox', 'cat']);
    assert.equal(await ok(['start', '-a', '-i', 'reader'], 'via start -ai\n'), 'via start -ai\n');
    await ok(['rm', '-f', 'ticker', 'once', 'reader']);
  });

  test('exec: exit codes, -i, -t, -d, -u, -w, -e, --privileged; exec into a stopped container is 409', async () => {
    await ok(['run', '-d', '--name', 'box', 'busybox', 'sleep', '300']);
    assert.equal((await ok(['exec', 'box', 'echo', 'hi'])), 'hi\n');
    assert.equal((await d.docker(['exec', 'box', 'sh', '-c', 'exit 5'])).code, 5);
    assert.equal((await d.docker(['exec', 'box', 'no-such-binary'])).code, 127);
    assert.equal(await ok(['exec', '-i', 'box', 'cat'], 'from-stdin\n'), 'from-stdin\n');
    assert.equal(await ok(['exec', '-u', '33:33', '-w', '/tmp', '-e', 'X=1', 'box', 'sh', '-c', 'id -u; pwd; echo $X']), '33\n/tmp\n1\n');
    const own = /CapBnd:\s+([0-9a-f]+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1];
    assert.match(await ok(['exec', '--privileged', 'box', 'grep', 'CapEff', '/proc/self/status']), new RegExp(`CapEff:\\s+${own}`), 'every capability the daemon has');
    await ok(['exec', '-d', 'box', 'sh', '-c', 'echo detached > /tmp/d']);
    await eventually(async () => (await d.docker(['exec', 'box', 'cat', '/tmp/d'])).stdout === 'detached\n', 5000, 'detached exec ran');
    const t = await Tmux.start('docker exec -it box sh', d.env(), 90, 25);
    sessions.push(t);
    await t.waitFor(/\/ # ?$/m, 'exec prompt');
    await t.type('stty size; tty');
    await t.waitFor(/^25 90\n\/dev\/pts\/\d+$/m, 'exec tty size');
    await t.type('exit 9');
    await t.waitFor(/EXIT=9/, 'exec -it exit code');
    assert.equal((await d.berth(['exec', 'box', 'sh', '-c', 'echo via-berth; exit 2'])).code, 2);
    await ok(['stop', '-t', '0', 'box']);
    const stopped = await d.docker(['exec', 'box', 'true']);
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /is not running/);
    await ok(['rm', 'box']);
  });

  test('exec start over the API: hijacked (101) and plain (200, as testcontainers does); ExitCode right after EOF', async () => {
    await ok(['run', '-d', '--name', 'api-box', 'busybox', 'sleep', '300']);
    for (const upgrade of [true, false]) {
      const { Id } = await d.client.json<{ Id: string }>('POST', '/containers/api-box/exec', {
        body: { AttachStdout: true, AttachStderr: true, Cmd: ['sh', '-c', 'echo out-$0; echo err >&2; exit 3'] },
      });
      const r = await rawExecStart(d.socket, Id, { Detach: false, Tty: false }, upgrade);
      assert.equal(r.status, upgrade ? 101 : 200);
      assert.equal(r.out, 'out-sh\n');
      assert.equal(r.err, 'err\n');
      const info = await d.client.json<{ ExitCode: number; Running: boolean }>('GET', `/exec/${Id}/json`);
      assert.equal(info.Running, false);
      assert.equal(info.ExitCode, 3, 'the exit code is there as soon as the stream ends');
    }
    const missing = await d.client.json('GET', '/exec/nope/json').catch((e: Error) => e);
    assert.match(String(missing), /No such exec instance/);
    await ok(['rm', '-f', 'api-box']);
  });
});
