/**
 * Real Node.js clients against berthd, unchanged: dockerode (the Engine API
 * client most Node tools are built on) and testcontainers (which drives
 * dockerode the way test suites do: labels, random published ports, wait
 * strategies, exec probes, archives, networks with aliases, healthchecks).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import tar from 'tar-stream';
import { TestDaemon, eventually } from '../helpers/daemon.js';

type TC = typeof import('testcontainers');

/** Collects a stream's bytes. */
class Sink extends Writable {
  private readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(Buffer.from(chunk));
    cb();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

/** Demuxes a multiplexed (stdcopy) stream until it ends. */
async function demux(docker: Docker, stream: NodeJS.ReadableStream): Promise<{ stdout: string; stderr: string }> {
  const out = new Sink();
  const err = new Sink();
  docker.modem.demuxStream(stream, out, err);
  await new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  return { stdout: out.text(), stderr: err.text() };
}

function tarOf(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, mode: 0o644 }, content);
  pack.finalize();
  return readAll(pack);
}

async function tarEntries(data: Buffer): Promise<Map<string, string>> {
  const extract = tar.extract();
  const entries = new Map<string, string>();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      readAll(stream).then((b) => {
        entries.set(header.name, b.toString());
        next();
      }, reject);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(data);
  await done;
  return entries;
}

describe('node clients', () => {
  let d: TestDaemon;
  let docker: Docker;
  const saved: Record<string, string | undefined> = {};
  before(async () => {
    d = await TestDaemon.start();
    docker = new Docker({ socketPath: d.socket });
  });
  after(async () => {
    await d.cleanup();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  describe('dockerode', () => {
    test('ping, version, info, listImages', async () => {
      const ping: unknown = await docker.ping();
      assert.equal(Buffer.isBuffer(ping) ? ping.toString() : ping, 'OK');
      const version = await docker.version();
      assert.match(version.ApiVersion, /^1\.\d+$/);
      assert.ok(version.Version);
      const info = await docker.info() as { Containers: number; Images: number; OperatingSystem: string; ServerVersion: string };
      assert.equal(typeof info.Containers, 'number');
      assert.ok(info.Images >= 1);
      assert.ok(info.ServerVersion);
      const images = await docker.listImages();
      assert.ok(images.some((i) => (i.RepoTags ?? []).includes('busybox:latest')), JSON.stringify(images));
      const inspect = await docker.getImage('busybox:latest').inspect();
      assert.match(inspect.Id, /^sha256:/);
    });

    test('create, start, wait, logs (demuxed)', async () => {
      const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
      try {
        await c.start();
        const res = (await c.wait()) as { StatusCode: number };
        assert.equal(res.StatusCode, 3);
        const logs = await c.logs({ stdout: true, stderr: true, follow: true });
        assert.deepEqual(await demux(docker, logs), { stdout: 'out\n', stderr: 'err\n' });
        const buf = await c.logs({ stdout: true, stderr: false, follow: false });
        // a plain buffer of stdcopy frames: header (stream 1, size 4) then the payload
        assert.equal(buf[0], 1);
        assert.equal(buf.subarray(8).toString(), 'out\n');
      } finally {
        await c.remove({ force: true });
      }
    });

    test('attach with stream before start', async () => {
      const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'read x; echo got $x; echo bye >&2'], OpenStdin: true, StdinOnce: true, AttachStdin: true });
      try {
        const stream = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
        const result = demux(docker, stream);
        await c.start();
        stream.write('hello\n');
        const res = (await c.wait()) as { StatusCode: number };
        assert.equal(res.StatusCode, 0);
        assert.deepEqual(await result, { stdout: 'got hello\n', stderr: 'bye\n' });
      } finally {
        await c.remove({ force: true });
      }
    });

    /** The exec's inspect once it stopped running. */
    const execDone = (e: Docker.Exec): Promise<Docker.ExecInspectInfo> =>
      eventually(async () => {
        const i = await e.inspect();
        return i.Running ? undefined : i;
      });

    test('exec: hijacked with stdin, plain, and inspect ExitCode', async () => {
      const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '300'] });
      try {
        await c.start();
        const e1 = await c.exec({ Cmd: ['sh', '-c', 'cat; echo e >&2; exit 4'], AttachStdin: true, AttachStdout: true, AttachStderr: true });
        const s1 = await e1.start({ hijack: true, stdin: true });
        const r1 = demux(docker, s1);
        s1.end('piped\n');
        assert.deepEqual(await r1, { stdout: 'piped\n', stderr: 'e\n' });
        const i1 = await execDone(e1);
        assert.equal(i1.ExitCode, 4);

        const e2 = await c.exec({ Cmd: ['echo', 'plain'], AttachStdout: true, AttachStderr: true });
        const s2 = await e2.start({});
        assert.deepEqual(await demux(docker, s2), { stdout: 'plain\n', stderr: '' });
        const i2 = await execDone(e2);
        assert.equal(i2.ExitCode, 0);
        assert.equal(i2.ContainerID, c.id);
      } finally {
        await c.remove({ force: true });
      }
    });

    test('putArchive and getArchive', async () => {
      const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '300'] });
      try {
        await c.start();
        await c.putArchive(await tarOf({ 'a.txt': 'alpha', 'sub/b.txt': 'beta' }), { path: '/tmp' });
        const e = await c.exec({ Cmd: ['cat', '/tmp/a.txt', '/tmp/sub/b.txt'], AttachStdout: true, AttachStderr: true });
        assert.equal((await demux(docker, await e.start({}))).stdout, 'alphabeta');
        const archive = await c.getArchive({ path: '/tmp/sub' });
        const entries = await tarEntries(await readAll(archive));
        assert.equal(entries.get('sub/b.txt'), 'beta');
        const head = await c.infoArchive({ path: '/tmp/a.txt' }) as { headers: Record<string, string | undefined> };
        const stat = head.headers['x-docker-container-path-stat'];
        assert.ok(stat, JSON.stringify(head.headers));
        const info = JSON.parse(Buffer.from(stat, 'base64').toString()) as { name: string; size: number };
        assert.equal(info.name, 'a.txt');
        assert.equal(info.size, 5);
      } finally {
        await c.remove({ force: true });
      }
    });

    test('inspect: State, NetworkSettings.Ports, Mounts', async () => {
      const vol = await docker.createVolume({ Name: 'nc-vol' });
      assert.equal(vol.name, 'nc-vol');
      const c = await docker.createContainer({
        Image: 'busybox',
        Cmd: ['sleep', '300'],
        ExposedPorts: { '80/tcp': {} },
        HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '' }] }, Binds: ['nc-vol:/data'] },
      });
      try {
        await c.start();
        const i = await c.inspect();
        assert.equal(i.State.Running, true);
        assert.equal(i.State.Status, 'running');
        assert.ok(i.State.Pid > 0);
        assert.ok(i.State.StartedAt);
        const ports = i.NetworkSettings.Ports['80/tcp'];
        assert.ok(Array.isArray(ports) && ports.length >= 1, JSON.stringify(i.NetworkSettings.Ports));
        assert.ok(Number(ports[0].HostPort) > 0);
        assert.ok((i.NetworkSettings as { IPAddress?: string }).IPAddress);
        assert.ok(i.NetworkSettings.Networks.bridge?.IPAddress);
        const m = i.Mounts.find((x) => x.Destination === '/data');
        assert.ok(m, JSON.stringify(i.Mounts));
        assert.equal(m.Type, 'volume');
        assert.equal(m.Name, 'nc-vol');
        assert.equal(m.RW, true);
        const list = await docker.listContainers({ filters: { id: [c.id] } });
        assert.equal(list.length, 1);
        assert.ok(list[0].Ports.some((p) => p.PrivatePort === 80 && p.PublicPort === Number(ports[0].HostPort)), JSON.stringify(list[0].Ports));
      } finally {
        await c.remove({ force: true });
        await docker.getVolume('nc-vol').remove();
      }
      const vols = await docker.listVolumes();
      assert.ok(!(vols.Volumes ?? []).some((v) => v.Name === 'nc-vol'));
    });

    test('networks: create, connect, disconnect, remove', async () => {
      const net = await docker.createNetwork({ Name: 'nc-net', CheckDuplicate: true });
      const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '300'] });
      try {
        await c.start();
        await net.connect({ Container: c.id, EndpointConfig: { Aliases: ['nc-alias'] } });
        let i = await c.inspect();
        assert.ok(i.NetworkSettings.Networks['nc-net']?.IPAddress, JSON.stringify(i.NetworkSettings.Networks));
        const n = await net.inspect() as { Name: string; Containers: Record<string, unknown> };
        assert.equal(n.Name, 'nc-net');
        assert.ok(n.Containers[c.id]);
        await net.disconnect({ Container: c.id });
        i = await c.inspect();
        assert.equal(i.NetworkSettings.Networks['nc-net'], undefined);
      } finally {
        await c.remove({ force: true });
        await net.remove();
      }
      const nets = await docker.listNetworks();
      assert.ok(!nets.some((x) => x.Name === 'nc-net'));
    });

    test('getEvents streams a start', async () => {
      const c = await docker.createContainer({ Image: 'busybox', Cmd: ['true'] });
      try {
        const events = await docker.getEvents({ filters: { type: ['container'], event: ['start'], container: [c.id] } });
        const got = new Promise<{ Action: string; id: string; Actor: { ID: string } }>((resolve, reject) => {
          let buf = '';
          events.on('data', (chunk: Buffer) => {
            buf += chunk.toString();
            const nl = buf.indexOf('\n');
            if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)));
          });
          events.on('error', reject);
        });
        await c.start();
        const ev = await got;
        assert.equal(ev.Action, 'start');
        assert.equal(ev.Actor.ID, c.id);
        (events as unknown as { destroy(): void }).destroy();
        await c.wait();
      } finally {
        await c.remove({ force: true });
      }
    });

    test('stats, top, pause, rename, kill, changes, export, commit, tag, image remove', async () => {
      const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo x > /made; trap "exit 7" USR1; while :; do sleep 0.1; done'], name: 'nc-misc' });
      try {
        await c.start();
        const stats = await c.stats({ stream: false });
        assert.ok(stats.memory_stats && typeof stats.memory_stats.usage === 'number', JSON.stringify(stats.memory_stats));
        assert.ok(stats.cpu_stats?.cpu_usage);
        assert.ok(stats.precpu_stats);
        const top = await c.top({ ps_args: '-ef' }) as { Titles: string[]; Processes: string[][] };
        assert.ok(top.Titles.includes('PID'), JSON.stringify(top.Titles));
        assert.ok(top.Processes.length >= 1);
        await c.pause();
        assert.equal((await c.inspect()).State.Status, 'paused');
        await c.unpause();
        await c.rename({ name: 'nc-misc2' });
        assert.equal((await c.inspect()).Name, '/nc-misc2');
        const changes = await c.changes() as { Path: string; Kind: number }[];
        assert.ok(changes.some((ch) => ch.Path === '/made' && ch.Kind === 1), JSON.stringify(changes));
        const exported = await c.export();
        assert.ok((await readAll(exported)).length > 1024 * 100);
        const img = await c.commit({ repo: 'nc-committed', tag: 'v1', changes: 'ENV COMMITTED=1' }) as { Id: string };
        assert.match(img.Id, /^sha256:/);
        await docker.getImage('nc-committed:v1').tag({ repo: 'nc-committed', tag: 'v2' });
        const inspected = await docker.getImage('nc-committed:v2').inspect();
        assert.ok(inspected.Config.Env.includes('COMMITTED=1'));
        await c.kill({ signal: 'SIGUSR1' });
        assert.equal(((await c.wait()) as { StatusCode: number }).StatusCode, 7);
        await docker.getImage('nc-committed:v1').remove();
        const removed = await docker.getImage('nc-committed:v2').remove() as { Untagged?: string; Deleted?: string }[];
        assert.ok(removed.some((r) => r.Deleted === img.Id), JSON.stringify(removed));
      } finally {
        await c.remove({ force: true });
      }
    });

    test('errors carry Docker status codes and messages', async () => {
      await assert.rejects(docker.getContainer('nc-missing').inspect(), (err: { statusCode?: number; message: string }) => err.statusCode === 404 && /No such container: nc-missing/.test(err.message));
      await assert.rejects(docker.getImage('nc-missing:latest').inspect(), (err: { statusCode?: number; message: string }) => err.statusCode === 404 && /no such image/i.test(err.message));
      await assert.rejects(docker.createContainer({ Image: 'nc-missing:latest' }), (err: { statusCode?: number }) => err.statusCode === 404);
      const c = await docker.createContainer({ Image: 'busybox', Cmd: ['true'], name: 'nc-dup' });
      try {
        await assert.rejects(docker.createContainer({ Image: 'busybox', name: 'nc-dup' }), (err: { statusCode?: number }) => err.statusCode === 409);
        await assert.rejects(c.stop(), (err: { statusCode?: number }) => err.statusCode === 304);
      } finally {
        await c.remove();
      }
    });

    test('pruneContainers removes stopped ones', async () => {
      const c = await docker.createContainer({ Image: 'busybox', Cmd: ['true'], Labels: { 'nc-prune': '1' } });
      await c.start();
      await c.wait();
      const r = await docker.pruneContainers({ filters: { label: ['nc-prune=1'] } });
      assert.deepEqual(r.ContainersDeleted, [c.id]);
      assert.equal(typeof r.SpaceReclaimed, 'number');
      await assert.rejects(c.inspect(), (err: { statusCode?: number }) => err.statusCode === 404);
    });

    test('docker.run convenience: tty by default, demuxed without', async () => {
      const out = new Sink();
      const [data, container] = (await docker.run('busybox', ['echo', 'hi'], out)) as [{ StatusCode: number }, Docker.Container];
      await container.remove();
      assert.equal(data.StatusCode, 0);
      assert.equal(out.text(), 'hi\r\n', 'dockerode creates with Tty: true, so the terminal adds CR');
      const o = new Sink();
      const e = new Sink();
      const [data2, container2] = (await docker.run('busybox', ['sh', '-c', 'echo hi; echo ho >&2; exit 5'], [o, e], { Tty: false })) as [{ StatusCode: number }, Docker.Container];
      await container2.remove();
      assert.equal(data2.StatusCode, 5);
      assert.equal(o.text(), 'hi\n');
      assert.equal(e.text(), 'ho\n');
    });
  });

  describe('testcontainers', () => {
    let tc: TC;
    before(async () => {
      for (const k of ['DOCKER_HOST', 'TESTCONTAINERS_RYUK_DISABLED', 'DOCKER_CONFIG', 'TESTCONTAINERS_HOST_OVERRIDE', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH']) saved[k] = process.env[k];
      process.env.DOCKER_HOST = d.host;
      process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
      process.env.DOCKER_CONFIG = d.env().DOCKER_CONFIG;
      delete process.env.TESTCONTAINERS_HOST_OVERRIDE;
      delete process.env.DOCKER_TLS_VERIFY;
      delete process.env.DOCKER_CERT_PATH;
      tc = await import('testcontainers');
    });

    test('GenericContainer: listening ports, fetch, exec, copy, logs, restart, stop', async () => {
      const { GenericContainer, Wait } = tc;
      const container = await new GenericContainer('busybox:latest')
        .withCommand(['sh', '-c', 'echo started; exec httpd -f -v -p 8080 -h /'])
        .withExposedPorts(8080)
        .withWaitStrategy(Wait.forListeningPorts())
        .withStartupTimeout(20_000)
        .start();
      try {
        const url = () => `http://${container.getHost()}:${container.getMappedPort(8080)}/etc/hostname`;
        const res = await fetch(url());
        assert.equal(res.status, 200);
        assert.equal((await res.text()).trim(), container.getId().slice(0, 12));

        const ex = await container.exec(['sh', '-c', 'echo x; echo y >&2; exit 2']);
        assert.equal(ex.exitCode, 2);
        assert.equal(ex.stdout, 'x\n');
        assert.equal(ex.stderr, 'y\n');
        assert.equal(ex.output, 'x\ny\n');

        await container.copyContentToContainer([{ content: 'copied', target: '/srv/copied.txt' }]);
        const cat = await container.exec(['cat', '/srv/copied.txt']);
        assert.equal(cat.output, 'copied');
        const back = await readAll(await container.copyArchiveFromContainer('/srv/copied.txt'));
        assert.equal((await tarEntries(back)).get('copied.txt'), 'copied');

        const logStream = await container.logs({ tail: 10 });
        let seen = '';
        logStream.on('data', (l: string | Buffer) => { seen += l.toString(); });
        await eventually(() => seen.includes('started'), 5000, 'logs() shows "started"');
        logStream.destroy();

        await container.restart({ timeout: 1000 });
        const res2 = await eventually(async () => {
          const r = await fetch(url()).catch(() => undefined);
          return r?.status === 200 ? r : undefined;
        }, 10_000, 'httpd after restart');
        assert.equal(res2.status, 200);
      } finally {
        const stopped = await container.stop({ timeout: 1000 });
        assert.equal(typeof stopped.getId(), 'string');
      }
      await assert.rejects(docker.getContainer(container.getId()).inspect(), (err: { statusCode?: number }) => err.statusCode === 404);
    });

    test('Network: two containers reach each other by alias', async () => {
      const { GenericContainer, Network, Wait } = tc;
      const network = await new Network().start();
      try {
        const server = await new GenericContainer('busybox:latest')
          .withCommand(['sh', '-c', 'echo pong > /tmp/ping; echo ready; exec httpd -f -p 8081 -h /tmp'])
          .withNetwork(network)
          .withNetworkAliases('pong-server')
          .withWaitStrategy(Wait.forLogMessage('ready'))
          .start();
        const client = await new GenericContainer('busybox:latest')
          .withCommand(['sleep', '300'])
          .withNetwork(network)
          .start();
        try {
          const r = await eventually(async () => {
            const x = await client.exec(['wget', '-q', '-O', '-', 'http://pong-server:8081/ping']);
            return x.exitCode === 0 ? x : undefined;
          }, 10_000, 'wget pong-server');
          assert.equal(r.output, 'pong\n');
          assert.ok(server.getIpAddress(network.getName()));
        } finally {
          await client.stop({ timeout: 0 });
          await server.stop({ timeout: 0 });
        }
      } finally {
        await network.stop();
      }
    });

    test('container options, files before start, and more wait strategies', async () => {
      const { GenericContainer, Wait } = tc;
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nc-bind-'));
      try {
        await fsp.chmod(dir, 0o755); // mkdtemp makes it 0700; the container runs as uid 1000
        await fsp.writeFile(path.join(dir, 'bound.txt'), 'from host');
        const container = await new GenericContainer('busybox:latest')
          .withName('nc-options')
          .withEnvironment({ GREETING: 'hello world' })
          .withLabels({ 'nc.label': 'yes' })
          .withWorkingDir('/srv')
          .withUser('1000:1000')
          .withTmpFs({ '/scratch': 'rw,size=1m' })
          .withBindMounts([{ source: dir, target: '/bound', mode: 'ro' }])
          .withCopyContentToContainer([{ content: 'early', target: '/srv/early.txt' }])
          .withEntrypoint(['sh', '-c'])
          .withCommand(['echo "$GREETING from $(pwd) as $(id -u)"; exec httpd -f -p 8082 -h /srv'])
          .withExposedPorts(8082)
          .withWaitStrategy(Wait.forHttp('/early.txt', 8082).forStatusCode(200))
          .withStartupTimeout(20_000)
          .start();
        try {
          assert.equal(container.getName(), '/nc-options');
          assert.equal(container.getLabels()['nc.label'], 'yes');
          assert.ok(container.getNetworkNames().includes('bridge'), String(container.getNetworkNames()));
          const r = await container.exec(['sh', '-c', 'cat /bound/bound.txt; touch /bound/x 2>/dev/null || echo ro; df /scratch | tail -1 | grep -c tmpfs']);
          assert.equal(r.output, 'from hostro\n1\n');
          const asRoot = await container.exec(['id', '-u'], { user: 'root', workingDir: '/tmp', env: { X: '1' } });
          assert.equal(asRoot.output, '0\n');
          // logs() follows: read until the line is there
          const logs = await container.logs();
          let seen = '';
          logs.on('data', (l: string | Buffer) => { seen += l.toString(); });
          await eventually(() => /hello world from \/srv as 1000/.test(seen), 5000, `greeting in logs: ${seen}`);
          logs.destroy();
        } finally {
          await container.stop({ timeout: 0 });
        }
        const oneShot = await new GenericContainer('busybox:latest')
          .withCommand(['sh', '-c', 'echo done'])
          .withWaitStrategy(Wait.forOneShotStartup())
          .withStartupTimeout(20_000)
          .start();
        await oneShot.stop();
        const cmd = await new GenericContainer('busybox:latest')
          .withCommand(['sh', '-c', 'sleep 1; touch /tmp/ready; exec sleep 300'])
          .withWaitStrategy(Wait.forSuccessfulCommand('test -f /tmp/ready'))
          .withStartupTimeout(20_000)
          .start();
        await cmd.stop({ timeout: 0 });
      } finally {
        await fsp.rm(dir, { recursive: true, force: true });
      }
    });

    test('fromDockerfile builds with the classic builder; runtime info', async () => {
      const { GenericContainer, getContainerRuntimeClient } = tc;
      const info = await getContainerRuntimeClient();
      assert.ok(info.info.containerRuntime.serverVersion);
      assert.ok(info.info.containerRuntime.host);
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nc-build-'));
      try {
        await fsp.writeFile(path.join(dir, 'Dockerfile'), 'FROM busybox:latest\nARG WHO\nCOPY hello.txt /hello.txt\nRUN echo "built for $WHO" >> /hello.txt\nCMD ["cat", "/hello.txt"]\n');
        await fsp.writeFile(path.join(dir, 'hello.txt'), 'hello\n');
        const image = await GenericContainer.fromDockerfile(dir).withBuildArgs({ WHO: 'tc' }).withCache(false).build('nc-built:latest', { deleteOnExit: false });
        try {
          const container = await image.withCommand(['sh', '-c', 'cat /hello.txt; sleep 300']).withWaitStrategy(tc.Wait.forLogMessage('built for tc')).withStartupTimeout(20_000).start();
          await container.stop({ timeout: 0 });
        } finally {
          await docker.getImage('nc-built:latest').remove();
        }
      } finally {
        await fsp.rm(dir, { recursive: true, force: true });
      }
    });

    test('health check wait strategy', async () => {
      const { GenericContainer, Wait } = tc;
      const container = await new GenericContainer('busybox:latest')
        .withCommand(['sh', '-c', 'sleep 1; touch /tmp/ok; exec sleep 300'])
        .withHealthCheck({ test: ['CMD-SHELL', 'test -f /tmp/ok'], interval: 200, timeout: 2000, retries: 20, startPeriod: 0 })
        .withWaitStrategy(Wait.forHealthCheck())
        .withStartupTimeout(20_000)
        .start();
      try {
        const i = await docker.getContainer(container.getId()).inspect();
        assert.equal(i.State.Health?.Status, 'healthy');
      } finally {
        await container.stop({ timeout: 0 });
      }
    });
  });
});
