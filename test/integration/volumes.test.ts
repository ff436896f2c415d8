/**
 * Volumes and mounts through the real docker CLI (and berth) against a real
 * berthd: named and anonymous volumes, copy-up from the image, bind mounts,
 * tmpfs, --mount, --volumes-from, --read-only, rm -v, prune, driver options,
 * persistence across a daemon restart, and bad input.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { TestDaemon, busyboxRootfsTar, exec } from '../helpers/daemon.js';

describe('volumes', () => {
  let d: TestDaemon;
  let hostDir: string;
  before(async () => {
    d = await TestDaemon.start();
    hostDir = await fsp.mkdtemp('/tmp/bt-vol-host-');
  });
  after(async () => {
    await d.cleanup();
    await fsp.rm(hostDir, { recursive: true, force: true });
  });

  const ok = (args: string[], input?: Buffer): Promise<string> => d.ok(args, input);
  const fails = (args: string[], message: RegExp): Promise<void> => d.fails(args, message);

  test('named volumes: data outlives containers and the daemon, two containers share it', async () => {
    await ok(['volume', 'create', '--label', 'app=db', 'dbdata']);
    await ok(['run', '--rm', '-v', 'dbdata:/data', 'busybox', 'sh', '-c', 'echo persisted > /data/file']);
    assert.equal(await ok(['run', '--rm', '-v', 'dbdata:/data', 'busybox', 'cat', '/data/file']), 'persisted');
    // two containers at once see each other's writes
    await ok(['run', '-d', '--name', 'writer', '-v', 'dbdata:/shared', 'busybox', 'sh', '-c', 'sleep 0.3; echo from-writer > /shared/live; sleep 60']);
    assert.equal(await ok(['run', '--rm', '-v', 'dbdata:/shared', 'busybox', 'sh', '-c', 'for i in $(seq 50); do [ -f /shared/live ] && break; sleep 0.1; done; cat /shared/live']), 'from-writer');
    await ok(['rm', '-f', 'writer']);
    await d.restartDaemon('SIGTERM');
    assert.equal(await ok(['run', '--rm', '-v', 'dbdata:/data', 'busybox', 'cat', '/data/file']), 'persisted');
    const v = JSON.parse(await ok(['volume', 'inspect', 'dbdata']))[0];
    assert.equal(v.Name, 'dbdata');
    assert.equal(v.Driver, 'local');
    assert.deepEqual(v.Labels, { app: 'db' });
    assert.equal(v.Mountpoint, path.join(d.dataRoot, 'volumes', 'dbdata', '_data'));
    assert.match(v.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(fs.readFileSync(path.join(v.Mountpoint, 'file'), 'utf8'), 'persisted\n');
  });

  test('copy-up: a new volume gets the image content with ownership and modes; nocopy turns it off', async () => {
    const dir = await fsp.mkdtemp('/tmp/bt-img-');
    try {
      await exec('tar', ['-x', '-C', dir], { input: await busyboxRootfsTar() });
      await fsp.mkdir(path.join(dir, 'data', 'sub'), { recursive: true });
      await fsp.writeFile(path.join(dir, 'data', 'seed.txt'), 'seed\n');
      await fsp.chmod(path.join(dir, 'data'), 0o750);
      await fsp.chown(path.join(dir, 'data'), 33, 33);
      await fsp.chown(path.join(dir, 'data', 'seed.txt'), 33, 33);
      await fsp.symlink('/etc/passwd', path.join(dir, 'data', 'link'));
      await exec('sh', ['-c', `tar --numeric-owner -C ${dir} -cf ${dir}.tar .`]);
      await ok(['import', '-c', 'VOLUME /data', `${dir}.tar`, 'seeded']);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
      await fsp.rm(`${dir}.tar`, { force: true });
    }
    // anonymous volume from the image's VOLUME
    const anon = await ok(['run', '--rm', 'seeded', 'sh', '-c', 'cat /data/seed.txt; stat -c "%u:%g %a" /data /data/seed.txt; readlink /data/link']);
    assert.deepEqual(anon.split('\n'), ['seed', '33:33 750', '33:33 644', '/etc/passwd']);
    // a named volume on the same path: copied too
    assert.equal(await ok(['run', '--rm', '-v', 'seeded-vol:/data', 'seeded', 'cat', '/data/seed.txt']), 'seed');
    // and only once: a volume with content is not overwritten
    await ok(['run', '--rm', '-v', 'seeded-vol:/data', 'seeded', 'sh', '-c', 'echo changed > /data/seed.txt']);
    assert.equal(await ok(['run', '--rm', '-v', 'seeded-vol:/data', 'seeded', 'cat', '/data/seed.txt']), 'changed');
    // nocopy
    assert.equal(await ok(['run', '--rm', '--mount', 'type=volume,source=empty-vol,target=/data,volume-nocopy', 'seeded', 'sh', '-c', 'ls -A /data | wc -l']), '0');
    assert.equal(await ok(['run', '--rm', '-v', 'empty-vol2:/data:nocopy', 'seeded', 'sh', '-c', 'ls -A /data | wc -l']), '0');
  });

  test('bind mounts, tmpfs and the long --mount form', async () => {
    await fsp.writeFile(path.join(hostDir, 'from-host'), 'host-file\n');
    assert.equal(await ok(['run', '--rm', '-v', `${hostDir}:/h:ro,z`, 'busybox', 'cat', '/h/from-host']), 'host-file');
    const ro = await d.docker(['run', '--rm', '-v', `${hostDir}:/h:ro`, 'busybox', 'touch', '/h/nope']);
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /Read-only file system/);
    await ok(['run', '--rm', '-v', `${hostDir}:/h`, 'busybox', 'sh', '-c', 'echo back > /h/from-container']);
    assert.equal(fs.readFileSync(path.join(hostDir, 'from-container'), 'utf8'), 'back\n');
    // -v creates a missing host directory; --mount refuses it
    const created = path.join(hostDir, 'made', 'by', 'v');
    await ok(['run', '--rm', '-v', `${created}:/x`, 'busybox', 'true']);
    assert.ok(fs.statSync(created).isDirectory());
    await fails(['run', '--rm', '--mount', `type=bind,source=${hostDir}/missing,target=/x`, 'busybox', 'true'], /bind source path does not exist/);
    assert.ok(!fs.existsSync(path.join(hostDir, 'missing')));
    assert.equal(await ok(['run', '--rm', '--mount', `type=bind,source=${hostDir},target=/b,readonly`, 'busybox', 'cat', '/b/from-host']), 'host-file');
    const tmpfs = await ok(['run', '--rm', '--tmpfs', '/run:size=64m', 'busybox', 'sh', '-c', 'grep " /run " /proc/mounts']);
    assert.match(tmpfs, /tmpfs \/run tmpfs .*size=65536k/);
    const tmpfs2 = await ok(['run', '--rm', '--mount', 'type=tmpfs,target=/scratch,tmpfs-size=10485760', 'busybox', 'sh', '-c', 'grep " /scratch " /proc/mounts']);
    assert.match(tmpfs2, /size=10240k/);
    const mounts = JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', (await ok(['create', '-v', `${hostDir}:/h:ro`, '-v', 'named-x:/n', '--tmpfs', '/t', 'busybox', 'true']))]));
    const byDest = Object.fromEntries(mounts.map((m: { Destination: string }) => [m.Destination, m]));
    assert.equal(byDest['/h'].Type, 'bind');
    assert.equal(byDest['/h'].RW, false);
    assert.equal(byDest['/n'].Type, 'volume');
    assert.equal(byDest['/n'].Name, 'named-x');
    assert.equal(byDest['/t'].Type, 'tmpfs');
  });

  test('--volumes-from, --read-only with writable volumes, rm -v and run --rm take anonymous volumes', async () => {
    await ok(['create', '--name', 'source-c', '-v', '/anon', '-v', 'shared-n:/named', 'busybox', 'true']);
    const anonName = JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', 'source-c'])).find((m: { Destination: string }) => m.Destination === '/anon').Name;
    await ok(['run', '--rm', '--volumes-from', 'source-c', 'busybox', 'sh', '-c', 'echo a > /anon/x; echo n > /named/y']);
    assert.equal(await ok(['run', '--rm', '--volumes-from', 'source-c:ro', 'busybox', 'cat', '/anon/x', '/named/y']), 'a\nn');
    const roFrom = await d.docker(['run', '--rm', '--volumes-from', 'source-c:ro', 'busybox', 'touch', '/anon/z']);
    assert.notEqual(roFrom.code, 0);
    const ro = await ok(['run', '--rm', '--read-only', '-v', 'rw-vol:/w', '--tmpfs', '/tmp', 'busybox', 'sh', '-c', 'touch /w/a && touch /tmp/b && echo writable; touch /etc/c 2>&1 || true']);
    assert.match(ro, /writable/);
    assert.match(ro, /Read-only file system/);
    await ok(['rm', '-v', 'source-c']);
    const names = (await ok(['volume', 'ls', '-q'])).split('\n');
    assert.ok(!names.includes(anonName), 'rm -v removed the anonymous volume');
    assert.ok(names.includes('shared-n'), 'but not the named one');
    const before = (await ok(['volume', 'ls', '-q'])).split('\n').length;
    await ok(['run', '--rm', '-v', '/scratch', 'busybox', 'true']);
    assert.equal((await ok(['volume', 'ls', '-q'])).split('\n').length, before, '--rm removed its anonymous volume');
  });

  test('volume rm, ls filters, prune (anonymous by default, --all for named), driver options', async () => {
    await ok(['run', '-d', '--name', 'user', '-v', 'busy-vol:/b', 'busybox', 'sleep', '60']);
    await fails(['volume', 'rm', 'busy-vol'], /volume is in use/);
    await fails(['volume', 'rm', 'no-such-volume'], /no such volume/);
    assert.equal((await d.docker(['volume', 'rm', '-f', 'no-such-volume'])).code, 0);
    await ok(['create', '--name', 'anon-holder', '-v', '/orphan', 'busybox', 'true']);
    const orphan = JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', 'anon-holder']))[0].Name;
    await ok(['rm', 'anon-holder']); // without -v: the anonymous volume stays, dangling
    await ok(['volume', 'create', 'lonely-named']);
    const dangling = (await ok(['volume', 'ls', '-q', '--filter', 'dangling=true'])).split('\n');
    assert.ok(dangling.includes(orphan) && dangling.includes('lonely-named'));
    assert.ok(!dangling.includes('busy-vol'));
    assert.deepEqual((await ok(['volume', 'ls', '-q', '--filter', 'name=busy'])).split('\n'), ['busy-vol']);
    assert.deepEqual((await ok(['volume', 'ls', '-q', '--filter', 'label=app=db'])).split('\n'), ['dbdata']);
    assert.ok((await ok(['volume', 'ls', '-q', '--filter', 'driver=local'])).includes('busy-vol'));
    const pruned = await ok(['volume', 'prune', '-f']);
    assert.match(pruned, new RegExp(orphan));
    assert.doesNotMatch(pruned, /lonely-named/);
    const all = await ok(['volume', 'prune', '-a', '-f']);
    assert.match(all, /lonely-named/);
    assert.ok((await ok(['volume', 'ls', '-q'])).split('\n').includes('busy-vol'), 'in-use volumes survive prune --all');
    await ok(['rm', '-f', 'user']);
    // local driver options: a tmpfs-backed volume
    await ok(['volume', 'create', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=8m', 'tmp-vol']);
    assert.match(await ok(['run', '--rm', '-v', 'tmp-vol:/m', 'busybox', 'sh', '-c', 'grep " /m " /proc/mounts']), /tmpfs \/m tmpfs .*size=8192k/);
    await fails(['volume', 'create', '--opt', 'bogus=1', 'bad-opts'], /invalid option key/);
    await fails(['volume', 'create', '--driver', 'nfs-plugin', 'bad-driver'], /plugin "nfs-plugin" not found/);
  });

  test('bad input: names, relative targets, /proc, duplicates; nothing is created', async () => {
    const before = await ok(['volume', 'ls', '-q']);
    await fails(['volume', 'create', '../escape'], /invalid characters/);
    await fails(['volume', 'create', 'a/b'], /invalid characters/);
    await fails(['run', '--rm', '-v', 'good-name:relative/path', 'busybox', 'true'], /must be absolute/);
    await fails(['run', '--rm', '-v', 'vol-proc:/proc', 'busybox', 'true'], /cannot mount over \/proc/);
    await fails(['run', '--rm', '-v', 'vol-a:/same', '-v', 'vol-b:/same', 'busybox', 'true'], /Duplicate mount point/);
    await fails(['run', '--rm', '-v', `${hostDir}:/x:bogus`, 'busybox', 'true'], /invalid mode: bogus/);
    assert.equal(await ok(['volume', 'ls', '-q']), before, 'no volume was created by a refused request');
    assert.ok(!fs.existsSync(path.join(d.dataRoot, 'volumes', '..', 'escape')));
  });

  test('berth: volume create/ls/inspect/rm and run -v; system df reports volume sizes', async () => {
    const c = await d.berth(['volume', 'create', 'berth-vol']);
    assert.equal(c.code, 0, c.stderr);
    const run = await d.berth(['run', '--rm', '-v', 'berth-vol:/v', 'busybox', 'sh', '-c', 'head -c 100000 /dev/zero > /v/blob; echo done']);
    assert.equal(run.stdout.trim(), 'done', run.stderr);
    const ls = await d.berth(['volume', 'ls', '--format', '{{.Name}}']);
    assert.match(ls.stdout, /^berth-vol$/m);
    const ins = await d.berth(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'berth-vol']);
    assert.equal(ins.stdout.trim(), path.join(d.dataRoot, 'volumes', 'berth-vol', '_data'));
    const df = await d.docker(['system', 'df', '-v', '--format', '{{json .Volumes}}']);
    assert.equal(df.code, 0, df.stderr);
    const vols = JSON.parse(df.stdout) as { Name: string; Size: string }[];
    const entry = vols.find((v) => v.Name === 'berth-vol');
    assert.ok(entry && /100(\.\d)?kB/.test(entry.Size), `size in system df: ${JSON.stringify(entry)}`);
    assert.equal((await d.berth(['volume', 'rm', 'berth-vol'])).code, 0);
  });
});
