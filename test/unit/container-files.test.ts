/**
 * The pure and filesystem-level parts of cp, diff and top, on temporary
 * directories: containment of the container filesystem walker (symlinks
 * pointing out, "..", loops, mounts), Docker's path and mode rules, the
 * overlay diff (whiteouts, opaque directories), ps output filtering, and
 * the CLI's local unpacking (never outside, never through a symlink).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { ContainerFs, FsPathError, type Location } from '../../src/engine/containers/container-fs.js';
import { containerAbsPath, goBase, goFileMode } from '../../src/engine/containers/archive.js';
import { ContainerChanges } from '../../src/engine/containers/diff.js';
import { parsePsOutput, validatePsArgs } from '../../src/engine/containers/top.js';
import { prepareCopy, renameEntry, splitCopyArg, splitPathDirEntry, unpackLocal } from '../../src/cli/copy.js';
import { native, S_IFCHR } from '../../src/engine/runtime/native.js';

async function tmp(prefix: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** The host path a location names, to compare inodes. */
async function inode(loc: Location): Promise<number> {
  if (loc.kind === 'dir') return (await loc.dir.handle.stat()).ino;
  if (loc.kind === 'file-mount') return (await fsp.stat(loc.mount.source)).ino;
  return loc.stat!.ino;
}

describe('container filesystem walker', () => {
  let dir: string;
  let root: string;
  let outside: string;
  let vol: string;
  let fsx: ContainerFs;
  let rootHandle: fsp.FileHandle;

  before(async () => {
    dir = await tmp('cfs-');
    root = path.join(dir, 'root');
    outside = path.join(dir, 'outside');
    vol = path.join(dir, 'vol');
    for (const d of [root, outside, vol, path.join(root, 'etc'), path.join(root, 'tmp'), path.join(root, 'data')]) await fsp.mkdir(d, { recursive: true });
    await fsp.writeFile(path.join(root, 'etc/passwd'), 'container\n');
    await fsp.writeFile(path.join(outside, 'secret'), 'host\n');
    await fsp.writeFile(path.join(vol, 'in-volume'), 'vol\n');
    await fsp.writeFile(path.join(dir, 'hosts'), '127.0.0.1 c\n');
    await fsp.symlink('/', path.join(root, 'escape'));
    await fsp.symlink('/etc', path.join(root, 'x'));
    await fsp.symlink('../../../../../../../..', path.join(root, 'rel'));
    await fsp.symlink(outside, path.join(root, 'hostpath'));
    await fsp.symlink('loop', path.join(root, 'loop'));
    await fsp.symlink('/', path.join(vol, 'out'));
    rootHandle = await fsp.open(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    fsx = new ContainerFs({
      root: rootHandle,
      readonlyRootfs: false,
      mounts: [
        { destination: '/data', source: vol, readOnly: false, kind: 'volume' },
        { destination: '/etc/hosts', source: path.join(dir, 'hosts'), readOnly: false, kind: 'file' },
      ],
    });
  });

  after(async () => {
    await fsx.close();
    await rootHandle.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test('symlinks to "/" and ".." chains resolve inside the root', async () => {
    const etc = (await fsp.stat(path.join(root, 'etc/passwd'))).ino;
    for (const p of ['/escape/etc/passwd', '/rel/etc/passwd', '/x/passwd', '/../../etc/passwd', '/data/out/etc/passwd', '/data/../x/passwd']) {
      const loc = await fsx.resolve(p);
      assert.equal(loc.path, '/etc/passwd', p);
      assert.equal(await inode(loc), etc, p);
      if (loc.kind === 'entry') await fsx.release(loc.parent);
    }
  });

  test('an absolute host path in a symlink means that path in the container', async () => {
    // the container has no such directory: not found, though the host has it
    await assert.rejects(fsx.resolve('/hostpath/secret'), (err: unknown) => err instanceof FsPathError && err.code === 'ENOENT');
    const link = await fsx.resolve('/hostpath', { followFinal: true, lexicalMissing: true });
    assert.equal(link.path, outside);
    assert.equal(link.stat, undefined);
  });

  test('the last component is followed only when asked or when the path asserts a directory', async () => {
    const link = await fsx.resolve('/x');
    assert.equal(link.kind === 'entry' && link.stat?.isSymbolicLink(), true);
    const followed = await fsx.resolve('/x', { followFinal: true });
    assert.equal(followed.path, '/etc');
    assert.equal((await fsx.resolve('/x/')).path, '/etc');
    assert.equal((await fsx.resolve('/escape', { followFinal: true })).path, '/');
  });

  test('loops fail with ELOOP; a file in the middle with ENOTDIR', async () => {
    await assert.rejects(fsx.resolve('/loop', { followFinal: true }), (err: unknown) => err instanceof FsPathError && err.code === 'ELOOP');
    await assert.rejects(fsx.resolve('/etc/passwd/x'), (err: unknown) => err instanceof FsPathError && err.code === 'ENOTDIR');
  });

  test('mounts: the deepest destination wins, files and volumes included', async () => {
    const inVol = await fsx.resolve('/data/in-volume');
    assert.equal(ContainerFs.mountOf(inVol)?.destination, '/data');
    assert.equal(await inode(inVol), (await fsp.stat(path.join(vol, 'in-volume'))).ino);
    const hosts = await fsx.resolve('/etc/hosts');
    assert.equal(hosts.kind, 'file-mount');
    const dataRoot = await fsx.resolve('/data');
    assert.equal(dataRoot.kind, 'dir');
    await assert.rejects(fsx.resolve('/etc/hosts/x'), (err: unknown) => err instanceof FsPathError && err.code === 'ENOTDIR');
  });

  test('creating directories through symlinks stays inside', async () => {
    const loc = await fsx.resolve('/escape/etc/newdir/sub', { followFinal: true, createDirs: true });
    assert.equal(loc.path, '/etc/newdir/sub');
    assert.ok(fs.statSync(path.join(root, 'etc/newdir/sub')).isDirectory());
    assert.equal(fs.existsSync('/etc/newdir'), false);
    const viaHost = await fsx.resolve('/hostpath/made', { followFinal: true, createDirs: true });
    assert.equal(viaHost.path, `${outside}/made`);
    assert.equal(fs.existsSync(path.join(outside, 'made')), false, 'nothing created on the host');
    assert.ok(fs.existsSync(path.join(root, outside, 'made')));
  });

  test('removing a tree never follows a symlink in it', async () => {
    const tree = path.join(root, 'tmp/tree');
    await fsp.mkdir(path.join(tree, 'sub'), { recursive: true });
    await fsp.symlink(outside, path.join(tree, 'sub/link'));
    const tmpDir = await fsx.openChild(fsx.root, 'tmp');
    await fsx.removeChild(tmpDir, 'tree');
    await fsx.release(tmpDir);
    assert.equal(fs.existsSync(tree), false);
    assert.equal(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'host\n');
    await assert.rejects(fsx.removeChild(fsx.root, 'data'), (err: unknown) => err instanceof FsPathError && err.code === 'EBUSY');
  });
});

describe("Docker's path and mode rules", () => {
  test('paths are cleaned lexically and keep a trailing "/" or "/."', () => {
    assert.equal(containerAbsPath('etc'), '/etc');
    assert.equal(containerAbsPath('/../../etc/./passwd'), '/etc/passwd');
    assert.equal(containerAbsPath('/etc/'), '/etc/');
    assert.equal(containerAbsPath('/etc/.'), '/etc/.');
    assert.equal(containerAbsPath('/'), '/');
    assert.equal(containerAbsPath('.'), '/.');
    assert.equal(goBase('/'), '/');
    assert.equal(goBase('/etc/'), 'etc');
    assert.equal(goBase('/etc/.'), '.');
  });

  test('modes are Go FileModes', async () => {
    const d = await tmp('mode-');
    try {
      await fsp.chmod(d, 0o755);
      await fsp.writeFile(path.join(d, 'f'), '');
      await fsp.chmod(path.join(d, 'f'), 0o4640);
      await fsp.symlink('f', path.join(d, 'l'));
      assert.equal(goFileMode(fs.lstatSync(d)), 2 ** 31 + 0o755);
      assert.equal(goFileMode(fs.lstatSync(path.join(d, 'f'))), 2 ** 23 + 0o640);
      assert.equal(goFileMode(fs.lstatSync(path.join(d, 'l'))), 2 ** 27 + 0o777);
      assert.equal(goFileMode(fs.lstatSync('/dev/null')), 2 ** 26 + 2 ** 21 + 0o666);
    } finally {
      await fsp.rm(d, { recursive: true, force: true });
    }
  });
});

describe('diff over overlay layers', () => {
  let dir: string;
  before(async () => {
    dir = await tmp('diff-');
  });
  after(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const write = async (rel: string, body = 'x'): Promise<void> => {
    await fsp.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fsp.writeFile(path.join(dir, rel), body);
  };
  const whiteout = async (rel: string): Promise<void> => {
    await fsp.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    native().mknod(path.join(dir, rel), S_IFCHR, 0, 0);
  };
  const opaque = (rel: string): void => native().lsetxattr(path.join(dir, rel), 'trusted.overlay.opaque', Buffer.from('y'));

  test('added, changed and deleted paths in walk order, whiteouts and opaque directories understood', async () => {
    // image: two layers; the top one deletes /base/gone and replaces /opt wholesale
    await write('l1/base/keep');
    await write('l1/base/gone');
    await write('l1/base/edit', 'old');
    await write('l1/opt/a');
    await write('l1/opt/b');
    await write('l1/etc/passwd');
    await whiteout('l2/base/gone');
    await write('l2/opt/c');
    opaque('l2/opt');
    // the container: edits, adds, deletes, replaces /opt again, leaves mount points
    await write('up/base/edit', 'new');
    await write('up/base/new');
    await whiteout('up/base/keep');
    await write('up/base/gone'); // gone in the image: added back
    await write('up/opt/d');
    opaque('up/opt');
    await write('up/etc/hosts', ''); // runtime mount point
    await fsp.mkdir(path.join(dir, 'up/proc'), { recursive: true });
    const changes = new ContainerChanges({
      writableLayer: async () => ({ upper: path.join(dir, 'up'), lowers: [path.join(dir, 'l2'), path.join(dir, 'l1')] }),
    });
    const out = (await changes.changes('x')) ?? [];
    assert.deepEqual(
      out.map((c) => `${'CAD'[c.Kind]} ${c.Path}`),
      ['C /base', 'C /base/edit', 'A /base/gone', 'D /base/keep', 'A /base/new', 'C /opt', 'D /opt/c', 'A /opt/d'],
    );
    await fsp.mkdir(path.join(dir, 'empty'));
    const none = new ContainerChanges({ writableLayer: async () => ({ upper: path.join(dir, 'empty'), lowers: [path.join(dir, 'l1')] }) });
    assert.equal(await none.changes('x'), null, 'no changes: null, as Docker answers');
  });
});

describe('top', () => {
  const ps = `UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init splash
root         100       1  0 10:01 ?        00:00:00 sleep 1000
root         101     100  0 10:01 ?        00:00:00 sh -c echo hi there
`;
  test('keeps the container rows, the command column whole', () => {
    const r = parsePsOutput(ps, new Set([100, 101]));
    assert.deepEqual(r.Titles, ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
    assert.deepEqual(r.Processes, [
      ['root', '100', '1', '0', '10:01', '?', '00:00:00', 'sleep 1000'],
      ['root', '101', '100', '0', '10:01', '?', '00:00:00', 'sh -c echo hi there'],
    ]);
  });
  test('thread rows follow their process; a PID column is required', () => {
    const threads = 'PID TID CMD\n100 - sleep\n- 100 -\n200 - other\n- 200 -\n';
    assert.deepEqual(parsePsOutput(threads, new Set([100])).Processes, [['100', '-', 'sleep'], ['-', '100', '-']]);
    assert.throws(() => parsePsOutput('USER CMD\nroot x\n', new Set([1])), /Couldn't find PID field/);
    assert.throws(() => validatePsArgs(' -o user=PID'), /specifying "user=PID" is not allowed/);
    validatePsArgs(' -o pid=PID,comm');
  });
});

describe('berth cp, the local side', () => {
  test("Docker's copy rules", () => {
    assert.deepEqual(splitCopyArg('c:/etc'), { container: 'c', path: '/etc' });
    assert.deepEqual(splitCopyArg('/abs:x'), { path: '/abs:x' });
    assert.deepEqual(splitCopyArg('./a:b'), { path: './a:b' });
    assert.deepEqual(splitPathDirEntry('/a/b/'), { dir: '/a', base: 'b' });
    assert.deepEqual(splitPathDirEntry('/a/b/.'), { dir: '/a/b', base: '.' });
    const dir = { path: '/src/d', exists: true, isDir: true };
    const file = { path: '/src/f', exists: true, isDir: false };
    assert.deepEqual(prepareCopy(file, { path: '/dst', exists: true, isDir: true }), { dstDir: '/dst' });
    assert.deepEqual(prepareCopy(file, { path: '/dst/g', exists: false, isDir: false }), { dstDir: '/dst', rename: { from: 'f', to: 'g' } });
    assert.deepEqual(prepareCopy(dir, { path: '/dst/e', exists: false, isDir: false }), { dstDir: '/dst', rename: { from: 'd', to: 'e' } });
    assert.throws(() => prepareCopy(dir, { path: '/dst/g', exists: true, isDir: false }), /cannot copy directory/);
    assert.throws(() => prepareCopy(file, { path: '/dst/new/', exists: false, isDir: false }), /no such directory/);
    assert.equal(renameEntry('d/x/y', { from: 'd', to: 'e' }), 'e/x/y');
    assert.equal(renameEntry('dd/x', { from: 'd', to: 'e' }), 'dd/x');
    assert.equal(renameEntry('/etc/x', { from: '/', to: 'root' }), 'root/etc/x');
  });

  const tarOf = async (entries: { name: string; type?: 'file' | 'symlink' | 'directory'; linkname?: string; body?: string }[]): Promise<Readable> => {
    const pack = tar.pack();
    for (const e of entries) {
      if (e.type === 'symlink' || e.type === 'directory') pack.entry({ name: e.name, type: e.type, linkname: e.linkname });
      else pack.entry({ name: e.name }, e.body ?? 'data');
    }
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
    return Readable.from([Buffer.concat(chunks)]);
  };

  test('unpacking never leaves the destination nor writes through a symlink', async () => {
    const d = await tmp('unpack-');
    const victim = await tmp('victim-');
    try {
      await assert.rejects(unpackLocal(await tarOf([{ name: '../escaped' }]), d), /outside the destination/);
      assert.equal(fs.existsSync(path.join(path.dirname(d), 'escaped')), false);
      await assert.rejects(unpackLocal(await tarOf([{ name: 'link', type: 'symlink', linkname: victim }, { name: 'link/pwned' }]), d), /goes through a symlink/);
      assert.deepEqual(fs.readdirSync(victim), []);
      await unpackLocal(await tarOf([{ name: 'ok/', type: 'directory' }, { name: 'ok/file', body: 'hello' }]), d, { from: 'ok', to: 'renamed' });
      assert.equal(fs.readFileSync(path.join(d, 'renamed/file'), 'utf8'), 'hello');
    } finally {
      await fsp.rm(d, { recursive: true, force: true });
      await fsp.rm(victim, { recursive: true, force: true });
    }
  });
});
