/**
 * cp, top, diff and stats through the real docker CLI and the berth CLI
 * against a real berthd: copies both ways on running and stopped
 * containers (stdin/stdout tar streams, -a, volumes, binds, read-only
 * mounts), escape attempts (".." in paths and tar entries, symlinks in the
 * container pointing out), Docker's errors, and the stats JSON.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import tar from 'tar-stream';
import { TestDaemon, eventually } from '../helpers/daemon.js';

type TarEntry = { name: string; type?: 'file' | 'directory' | 'symlink'; body?: string; linkname?: string; uid?: number };

async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    const h = { name: e.name, type: e.type ?? 'file', linkname: e.linkname, uid: e.uid ?? 0, gid: e.uid ?? 0, mode: e.type === 'directory' ? 0o755 : 0o644 } as const;
    if (h.type === 'file') pack.entry(h, e.body ?? '');
    else pack.entry(h);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** name -> {type, uid, body} of a tar. */
async function readTar(buf: Buffer): Promise<Map<string, { type: string; uid: number; gid: number; linkname: string | null; body: string }>> {
  const out = new Map<string, { type: string; uid: number; gid: number; linkname: string | null; body: string }>();
  const extract = tar.extract();
  extract.end(buf);
  for await (const e of extract as unknown as AsyncIterable<AsyncIterable<Buffer> & { header: tar.Header }>) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c);
    out.set(e.header.name, { type: e.header.type, uid: e.header.uid, gid: e.header.gid, linkname: e.header.linkname ?? null, body: Buffer.concat(chunks).toString() });
  }
  return out;
}

describe('cp, top, diff, stats', () => {
  let d: TestDaemon;
  let work: string;
  const tag = crypto.randomBytes(4).toString('hex');

  before(async () => {
    d = await TestDaemon.start();
    work = await fsp.mkdtemp('/tmp/bt-files-');
  });
  after(async () => {
    await d.cleanup();
    await fsp.rm(work, { recursive: true, force: true });
  });

  const ok = async (args: string[], input?: Buffer): Promise<string> => {
    const r = await d.docker(args, input ? { input } : {});
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** docker cp c:path - as a map of entries. */
  const fetch = async (container: string, p: string): Promise<Awaited<ReturnType<typeof readTar>>> => {
    const r = await d.client.raw('GET', `/containers/${container}/archive`, { query: { path: p } });
    const chunks: Buffer[] = [];
    for await (const c of r) chunks.push(c as Buffer);
    assert.equal(r.statusCode, 200, Buffer.concat(chunks).toString());
    return readTar(Buffer.concat(chunks));
  };
  const put = async (container: string, p: string, body: Buffer, query: Record<string, string> = {}): Promise<{ status: number; text: string }> => {
    const r = await d.client.raw('PUT', `/containers/${container}/archive`, { query: { path: p, ...query }, rawBody: body });
    const chunks: Buffer[] = [];
    for await (const c of r) chunks.push(c as Buffer);
    return { status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString() };
  };
  const rootfsMounted = (id: string): boolean => fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(`/containers/${id}/rootfs`);

  test('docker cp both ways on a running container: files, directories, symlinks, stdin and stdout', async () => {
    // the container plants symlinks pointing out of itself (used by the escape tests below)
    await ok(['run', '-d', '--name', 'cp1', 'busybox', 'sh', '-c', `ln -s / /escape && ln -s /etc /x && ln -s ../../../../../../.. /deep && ln -s ${work} /hostdir && exec sleep 1000`]);
    const src = path.join(work, 'tree');
    await fsp.mkdir(path.join(src, 'sub'), { recursive: true });
    await fsp.writeFile(path.join(src, 'sub/a.txt'), 'alpha');
    await fsp.chmod(path.join(src, 'sub/a.txt'), 0o640);
    await fsp.symlink('sub/a.txt', path.join(src, 'link'));
    await ok(['cp', src, 'cp1:/tmp/tree']);
    assert.equal((await fetch('cp1', '/tmp/tree/sub/a.txt')).get('a.txt')!.body, 'alpha');
    const back = path.join(work, 'back');
    await ok(['cp', 'cp1:/tmp/tree', back]);
    assert.equal(fs.readFileSync(path.join(back, 'sub/a.txt'), 'utf8'), 'alpha');
    assert.equal(fs.statSync(path.join(back, 'sub/a.txt')).mode & 0o777, 0o640);
    assert.equal(fs.readlinkSync(path.join(back, 'link')), 'sub/a.txt');
    // a file onto a new name, and the contents of a directory with "/."
    await ok(['cp', 'cp1:/etc/passwd', path.join(work, 'pw')]);
    assert.match(fs.readFileSync(path.join(work, 'pw'), 'utf8'), /^root:/);
    await ok(['cp', 'cp1:/tmp/tree/.', path.join(work, 'contents')]);
    assert.deepEqual(fs.readdirSync(path.join(work, 'contents')).sort(), ['link', 'sub']);
    // stdout: a tar named after the requested path; stdin: a tar extracted into a directory
    const out = await d.docker(['cp', 'cp1:/tmp/tree/sub', '-']);
    assert.equal(out.code, 0, out.stderr);
    const entries = await readTar(Buffer.from(out.stdout, 'latin1'));
    assert.deepEqual([...entries.keys()], ['sub', 'sub/a.txt']);
    await ok(['cp', '-', 'cp1:/tmp'], await makeTar([{ name: 'from-stdin/x', body: 'std' }]));
    assert.equal((await fetch('cp1', '/tmp/from-stdin/x')).get('x')!.body, 'std');
    // the stat header
    const head = await d.client.raw('HEAD', '/containers/cp1/archive', { query: { path: '/tmp/tree/link' } });
    head.resume();
    const stat = JSON.parse(Buffer.from(String(head.headers['x-docker-container-path-stat']), 'base64').toString());
    assert.equal(stat.name, 'link');
    assert.equal(stat.mode, 2 ** 27 + 0o777);
    assert.equal(stat.linkTarget, '/tmp/tree/sub/a.txt');
    assert.match(stat.mtime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  });

  test('berth cp both ways, -L, and "-" streams', async () => {
    const f = path.join(work, 'berth-file');
    await fsp.writeFile(f, 'from berth');
    const up = await d.berth(['cp', f, 'cp1:/tmp/']);
    assert.equal(up.code, 0, up.stderr);
    assert.equal((await fetch('cp1', '/tmp/berth-file')).get('berth-file')!.body, 'from berth');
    const dest = path.join(work, 'berth-back');
    const down = await d.berth(['cp', 'cp1:/tmp/tree', dest]);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(fs.readFileSync(path.join(dest, 'sub/a.txt'), 'utf8'), 'alpha');
    const followed = await d.berth(['cp', '-L', 'cp1:/tmp/tree/link', path.join(work, 'followed')]);
    assert.equal(followed.code, 0, followed.stderr);
    assert.equal(fs.readFileSync(path.join(work, 'followed'), 'utf8'), 'alpha');
    const tarOut = await d.berth(['cp', 'cp1:/tmp/berth-file', '-']);
    assert.deepEqual([...(await readTar(Buffer.from(tarOut.stdout, 'latin1'))).keys()], ['berth-file']);
    const tarIn = await d.berth(['cp', '-', 'cp1:/tmp'], { input: await makeTar([{ name: 'berth-stdin', body: 'in' }]) });
    assert.equal(tarIn.code, 0, tarIn.stderr);
    assert.equal((await fetch('cp1', '/tmp/berth-stdin')).get('berth-stdin')!.body, 'in');
  });

  test('symlinks in the container pointing out never lead to the host', async () => {
    const name = `berth-escape-${tag}`;
    const f = path.join(work, name);
    await fsp.writeFile(f, 'inside');
    await ok(['cp', f, 'cp1:/x/']);
    assert.equal(fs.existsSync(`/etc/${name}`), false, "nothing in the host's /etc");
    assert.equal((await fetch('cp1', `/etc/${name}`)).get(name)!.body, 'inside');
    assert.equal(await ok(['exec', 'cp1', 'cat', `/etc/${name}`]), 'inside', 'the container sees it in its /etc');
    await ok(['cp', f, 'cp1:/deep/tmp/']);
    assert.equal((await fetch('cp1', `/tmp/${name}`)).get(name)!.body, 'inside');
    // reading through the links gives the container's files
    const hostname = (await fetch('cp1', '/escape/etc/hostname')).get('hostname')!.body;
    assert.equal(hostname.trim(), (await ok(['inspect', '-f', '{{.Config.Hostname}}', 'cp1'])).trim());
    assert.equal((await fetch('cp1', '/../../../etc/hostname')).get('hostname')!.body, hostname);
    assert.equal((await fetch('cp1', '/deep/etc/hostname')).get('hostname')!.body, hostname);
    // an absolute host path in a link means that path inside the container
    const missing = await d.docker(['cp', `cp1:/hostdir/${name}`, '-']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, new RegExp(`Could not find the file /hostdir/${name} in container cp1`));
    const r = await put('cp1', '/hostdir', await makeTar([{ name: 'planted', body: 'x' }]));
    assert.equal(r.status, 404, r.text);
    assert.equal(fs.existsSync(path.join(work, 'planted')), false);
  });

  test('tar entries that climb out, or go through links, stay inside or are refused', async () => {
    const outside = path.join(work, `outside-${tag}`);
    await fsp.mkdir(outside);
    const climb = await put('cp1', '/tmp', await makeTar([{ name: `../../../../..${outside}/evil`, body: 'x' }]));
    assert.equal(climb.status, 400);
    assert.match(JSON.parse(climb.text).message, /outside the extraction directory/);
    // a link planted by the archive, then a file through it: lands in the container
    const through = await put('cp1', '/tmp', await makeTar([
      { name: 'planted-link', type: 'symlink', linkname: outside },
      { name: 'planted-link/evil', body: 'x' },
    ]));
    assert.equal(through.status, 200, through.text);
    assert.deepEqual(fs.readdirSync(outside), [], 'nothing written on the host');
    assert.equal((await fetch('cp1', `${outside}/evil`)).get('evil')!.body, 'x');
    // not a tar; not a directory
    const junk = await put('cp1', '/tmp', Buffer.from('this is not a tar archive'));
    assert.equal(junk.status, 400);
    assert.match(JSON.parse(junk.text).message, /invalid tar/);
    const notDir = await put('cp1', '/etc/passwd', await makeTar([{ name: 'y' }]));
    assert.equal(notDir.status, 400);
    assert.equal(JSON.parse(notDir.text).message, 'extraction point is not a directory');
  });

  test('noOverwriteDirNonDir and missing paths', async () => {
    await put('cp1', '/tmp', await makeTar([{ name: 'adir/', type: 'directory' }, { name: 'adir/f', body: '1' }]));
    const refused = await put('cp1', '/tmp', await makeTar([{ name: 'adir', body: 'file now' }]), { noOverwriteDirNonDir: '1' });
    assert.equal(refused.status, 400);
    assert.match(JSON.parse(refused.text).message, /cannot overwrite directory "\/tmp\/adir" with non-directory "\/tmp"/);
    assert.equal((await fetch('cp1', '/tmp/adir/f')).get('f')!.body, '1', 'unchanged');
    const replaced = await put('cp1', '/tmp', await makeTar([{ name: 'adir', body: 'file now' }]));
    assert.equal(replaced.status, 200, replaced.text);
    assert.equal((await fetch('cp1', '/tmp/adir')).get('adir')!.body, 'file now');
    const missing = await d.docker(['cp', 'cp1:/no/such/file', work]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Could not find the file \/no\/such\/file in container cp1/);
    const nope = await d.docker(['cp', 'nosuchcontainer:/etc', work]);
    assert.match(nope.stderr, /No such container: nosuchcontainer/);
    const intoMissing = await d.docker(['cp', path.join(work, 'pw'), 'cp1:/no/such/dir/']);
    assert.notEqual(intoMissing.code, 0);
  });

  test('stopped containers: copies both ways, errors change nothing, no mount left behind', async () => {
    const id = (await ok(['create', '--name', 'stopped', 'busybox', 'true'])).trim();
    const f = path.join(work, 'to-stopped');
    await fsp.writeFile(f, 'cold');
    await ok(['cp', f, 'stopped:/tmp/']);
    await ok(['cp', 'stopped:/tmp/to-stopped', path.join(work, 'from-stopped')]);
    assert.equal(fs.readFileSync(path.join(work, 'from-stopped'), 'utf8'), 'cold');
    const notDir = await d.docker(['cp', f, 'stopped:/etc/passwd/x']);
    assert.notEqual(notDir.code, 0);
    assert.match(notDir.stderr, /extraction point is not a directory|not a directory|Could not find/);
    assert.equal(rootfsMounted(id), false);
    assert.equal((await ok(['inspect', '-f', '{{.State.Status}}', 'stopped'])).trim(), 'created');
    // what was copied in is there when it runs
    const run = await d.docker(['start', '-a', 'stopped']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await fetch('stopped', '/tmp/to-stopped')).get('to-stopped')!.body, 'cold');
  });

  test('volumes, binds and read-only mounts resolve like the container sees them', async () => {
    const bind = path.join(work, 'bind');
    await fsp.mkdir(bind);
    await fsp.writeFile(path.join(bind, 'b.txt'), 'bound');
    await ok(['volume', 'create', 'filesvol']);
    await fsp.writeFile(path.join(work, 'single.txt'), 'one file');
    await ok(['run', '-d', '--name', 'mnt', '-v', 'filesvol:/vol', '-v', `${bind}:/bind:ro`, '-v', `${work}/single.txt:/etc/single.txt`, 'busybox', 'sleep', '1000']);
    const f = path.join(work, 'into-volume');
    await fsp.writeFile(f, 'vol data');
    await ok(['cp', f, 'mnt:/vol/']);
    const mountpoint = (await ok(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'filesvol'])).trim();
    assert.equal(fs.readFileSync(path.join(mountpoint, 'into-volume'), 'utf8'), 'vol data');
    assert.equal((await fetch('mnt', '/bind/b.txt')).get('b.txt')!.body, 'bound');
    assert.equal((await fetch('mnt', '/etc/single.txt')).get('single.txt')!.body, 'one file');
    const ro = await d.docker(['cp', f, 'mnt:/bind/']);
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /mounted volume is marked read-only/);
    assert.deepEqual(fs.readdirSync(bind), ['b.txt']);
    // /etc/hosts is the container's
    assert.match((await fetch('mnt', '/etc/hosts')).get('hosts')!.body, /localhost/);
    await ok(['create', '--name', 'rofs', '--read-only', 'busybox', 'true']);
    const rofs = await d.docker(['cp', f, 'rofs:/tmp/']);
    assert.notEqual(rofs.code, 0);
    assert.match(rofs.stderr, /container rootfs is marked read-only/);
  });

  test('ownership: kept from the archive, or the container user with -a', async () => {
    await ok(['create', '--name', 'owned', '-u', '1000:1000', 'busybox', 'true']);
    const f = path.join(work, 'owned-file');
    await fsp.writeFile(f, 'o');
    await fsp.chown(f, 1234, 1235);
    await ok(['cp', f, 'owned:/tmp/plain']);
    await ok(['cp', '-a', f, 'owned:/tmp/archived']);
    const plain = (await fetch('owned', '/tmp/plain')).get('plain')!;
    const archived = (await fetch('owned', '/tmp/archived')).get('archived')!;
    assert.deepEqual([plain.uid, plain.gid], [1234, 1235]);
    assert.deepEqual([archived.uid, archived.gid], [1000, 1000]);
  });

  test('top lists the container processes, with ps options; refuses stopped containers', async () => {
    await ok(['run', '-d', '--name', 'procs', 'busybox', 'sh', '-c', 'sleep 1001 & sleep 1002 & wait']);
    const pid = Number((await ok(['inspect', '-f', '{{.State.Pid}}', 'procs'])).trim());
    const out = await eventually(async () => {
      const o = await ok(['top', 'procs']);
      return o.includes('sleep 1001') && o.includes('sleep 1002') ? o : undefined;
    }, 10_000, 'both sleeps in top');
    const lines = out.trim().split('\n');
    assert.match(lines[0], /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
    assert.ok(lines.some((l) => l.split(/\s+/)[1] === String(pid)));
    assert.equal(lines.length, 4, out); // header, sh, two sleeps
    await ok(['exec', '-d', 'procs', 'sleep', '1003']);
    await eventually(async () => (await ok(['top', 'procs'])).includes('sleep 1003'), 10_000, 'the exec session in top');
    const custom = await ok(['top', 'procs', '-o', 'pid,comm']);
    assert.match(custom, /^PID\s+COMMAND\n/);
    const api = await d.client.json<{ Titles: string[]; Processes: string[][] }>('GET', '/containers/procs/top', { query: { ps_args: 'aux' } });
    assert.ok(api.Titles.includes('USER') && api.Titles.includes('%CPU'));
    assert.equal(api.Processes.length, 4, 'sh, two sleeps and the exec session');
    const berth = await d.berth(['top', 'procs']);
    assert.equal(berth.code, 0, berth.stderr);
    assert.match(berth.stdout, /sleep 1001/);
    const stopped = await d.docker(['top', 'stopped']);
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /is not running/);
    const r = await d.client.raw('GET', '/containers/stopped/top');
    r.resume();
    assert.equal(r.statusCode, 409);
  });

  test('diff: A, C and D like Docker, nothing for a fresh container', async () => {
    await ok(['run', '--name', 'fresh', 'busybox', 'true']);
    assert.equal(await ok(['diff', 'fresh']), '');
    await ok(['run', '--name', 'changed', 'busybox', 'sh', '-c', 'mkdir -p /var/new/deep && echo 1 > /var/new/deep/f && echo x >> /etc/passwd && rm -rf /home && rm -rf /usr/bin && mkdir /usr/bin && touch /usr/bin/only']);
    const lines = (await ok(['diff', 'changed'])).trim().split('\n');
    assert.deepEqual(lines.filter((l) => !l.startsWith('D /usr/bin/')), [
      'C /etc',
      'C /etc/passwd',
      'D /home',
      'C /usr',
      'C /usr/bin',
      'A /usr/bin/only',
      'C /var',
      'A /var/new',
      'A /var/new/deep',
      'A /var/new/deep/f',
    ]);
    const api = await d.client.json<{ Path: string; Kind: number }[]>('GET', '/containers/changed/changes');
    assert.deepEqual(api.find((c) => c.Path === '/home'), { Path: '/home', Kind: 2 });
    const berth = await d.berth(['diff', 'changed']);
    assert.equal(berth.stdout.trim().split('\n').length, lines.length);
  });

  test('stats: the JSON shape, precpu from a previous sample, docker and berth tables', async () => {
    await ok(['run', '-d', '--name', 'busy', 'busybox', 'sh', '-c', 'while :; do :; done']);
    await new Promise((r) => setTimeout(r, 1200)); // a sampler pass or two
    const s = await d.client.json<Record<string, any>>('GET', '/containers/busy/stats', { query: { stream: false } });
    assert.deepEqual(Object.keys(s), ['read', 'preread', 'pids_stats', 'blkio_stats', 'num_procs', 'storage_stats', 'cpu_stats', 'precpu_stats', 'memory_stats', 'name', 'id', 'networks']);
    assert.equal(s.name, '/busy');
    assert.equal(s.pids_stats.current, 1);
    assert.notEqual(s.preread, '0001-01-01T00:00:00Z');
    // a previous sample: >= 500 ms old when the sampler has one, else a 250 ms window of its own
    assert.ok(Date.parse(s.read) - Date.parse(s.preread) >= 200, `${s.preread} -> ${s.read}`);
    const cpuDelta = s.cpu_stats.cpu_usage.total_usage - s.precpu_stats.cpu_usage.total_usage;
    const systemDelta = s.cpu_stats.system_cpu_usage - s.precpu_stats.system_cpu_usage;
    assert.ok(cpuDelta > 0 && systemDelta > 0);
    assert.ok((cpuDelta / systemDelta) * s.cpu_stats.online_cpus * 100 > 5, 'a busy loop uses CPU');
    assert.ok(s.memory_stats.usage > 0 && s.memory_stats.limit > 0);
    assert.ok('total_inactive_file' in s.memory_stats.stats);
    assert.ok(s.networks.eth0 && typeof s.networks.eth0.rx_bytes === 'number');
    assert.ok(Array.isArray(s.cpu_stats.cpu_usage.percpu_usage));
    // docker's table
    const table = await ok(['stats', '--no-stream', 'busy']);
    const [header, row] = table.trim().split('\n');
    assert.match(header, /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/);
    assert.match(row, /^[0-9a-f]{12}\s+busy\s+\d+\.\d\d%\s+[\d.]+[KMG]?i?B \/ [\d.]+[KMG]iB\s+\d+\.\d\d%\s+\S+ \/ \S+\s+\S+ \/ \S+\s+1$/);
    const cpu = Number(/(\d+\.\d\d)%/.exec(row)![1]);
    assert.ok(cpu > 5, row);
    const berth = await d.berth(['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', 'busy']);
    assert.equal(berth.stdout.trim(), 'busy 1');
    // host networking: no networks
    await ok(['run', '-d', '--name', 'hostnet', '--network', 'host', 'busybox', 'sleep', '1000']);
    const h = await d.client.json<Record<string, any>>('GET', '/containers/hostnet/stats', { query: { stream: false } });
    assert.equal(h.networks, undefined);
  });

  test('stats stream: a frame a second until the container stops; a stopped one gets an empty frame', async () => {
    await ok(['run', '-d', '--name', 'short', 'busybox', 'sleep', '2']);
    const res = await d.client.stream('GET', '/containers/short/stats', { query: { stream: true } });
    const frames: Record<string, any>[] = [];
    let buf = '';
    for await (const c of res) {
      buf += (c as Buffer).toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        frames.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
    }
    assert.ok(frames.length >= 2 && frames.length <= 5, `${frames.length} frames`);
    assert.equal(frames[1].precpu_stats.system_cpu_usage, frames[0].cpu_stats.system_cpu_usage, 'precpu is the previous frame');
    assert.equal(frames[1].preread, frames[0].read);
    const stopped = await d.client.json<Record<string, any>>('GET', '/containers/short/stats', { query: { stream: false } });
    assert.equal(stopped.read, '0001-01-01T00:00:00Z');
    assert.equal(stopped.name, '/short');
    const none = await d.docker(['stats', '--no-stream', 'nosuch']);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /No such container: nosuch/);
  });
});
