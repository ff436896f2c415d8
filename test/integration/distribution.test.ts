/**
 * berthd and registries: pull and push through the real docker CLI and
 * through `berth`, against a real CNCF distribution registry (Debian
 * docker-registry; BERTH_TEST_REGISTRY=host:port points the unauthenticated
 * tests at another one, such as `berth registry serve`), with auth off,
 * htpasswd Basic and token auth; multi-platform indexes, zstd and
 * uncompressed layers, mirrors; bad input (unknown registry, 404, 401,
 * damaged manifests and layers, unsupported media types) leaving nothing
 * behind; a download cut mid-layer (Range resume) and berthd killed -9
 * mid-pull.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import { TestDaemon, busyboxRootfsTar, eventually } from '../helpers/daemon.js';
import { TestRegistry } from '../helpers/registry.js';
import { RegistryProxy, putManifest, sha256, uploadImage } from '../helpers/oci.js';
import { assertNoLeftovers } from '../helpers/state.js';

/** A small layer of its own (a random file), so that no daemon already has it. */
async function uniqueTar(): Promise<Buffer> {
  const tarStream = (await import('tar-stream')).default;
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  pack.entry({ name: 'data/', type: 'directory', mode: 0o755 });
  pack.entry({ name: 'data/random', mode: 0o644 }, crypto.randomBytes(200_000).toString('base64'));
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

type Inspect = { Id: string; RepoTags: string[]; RepoDigests: string[]; Architecture: string; RootFS: { Layers: string[] } };

async function inspect(d: TestDaemon, name: string): Promise<Inspect> {
  const r = await d.docker(['image', 'inspect', name]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as Inspect[])[0];
}

describe('pull and push with the docker CLI and berth', () => {
  let reg: TestRegistry;
  let a: TestDaemon;
  let b: TestDaemon;
  let pushedDigest = '';
  let imageId = '';
  before(async () => {
    [reg, a, b] = await Promise.all([TestRegistry.start(), TestDaemon.start(), TestDaemon.start({ busybox: false })]);
  });
  after(async () => {
    await Promise.all([a?.cleanup(), b?.cleanup()]);
    await reg?.stop();
  });

  test('docker push: layers, digest, aux; a second push finds every layer', async () => {
    const name = `${reg.host}/tools/busybox:1.0`;
    assert.equal((await a.docker(['tag', 'busybox', name])).code, 0);
    const r = await a.docker(['push', name]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`The push refers to repository \\[${reg.host}/tools/busybox\\]`));
    assert.match(r.stdout, /: Pushed/);
    const m = /1\.0: digest: (sha256:[a-f0-9]{64}) size: (\d+)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    pushedDigest = m[1];
    const again = await a.docker(['push', name]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Layer already exists/);
    assert.match(again.stdout, new RegExp(`digest: ${pushedDigest}`), 'the digest is stable: the compressed layer was kept');
    const ins = await inspect(a, name);
    imageId = ins.Id;
    assert.ok(ins.RepoDigests.includes(`${reg.host}/tools/busybox@${pushedDigest}`));
    // the aux message carries Tag, Digest and Size
    const res = await a.client.stream('POST', `/images/${encodeURIComponent(`${reg.host}/tools/busybox`)}/push`, { query: { tag: '1.0' }, headers: { 'X-Registry-Auth': 'e30' } });
    const aux: Record<string, unknown>[] = [];
    await a.client.progress(res, (msg) => msg.aux && aux.push(msg.aux as Record<string, unknown>));
    assert.deepEqual(aux, [{ Tag: '1.0', Digest: pushedDigest, Size: Number(m[2]) }]);
  });

  test('docker pull: progress, RepoDigests, same image ID; then docker run', async () => {
    const name = `${reg.host}/tools/busybox:1.0`;
    const res = await b.client.stream('POST', '/images/create', { query: { fromImage: `${reg.host}/tools/busybox`, tag: '1.0' } });
    const statuses: string[] = [];
    let sawBytes = false;
    await b.client.progress(res, (msg) => {
      statuses.push(String(msg.status));
      const pd = msg.progressDetail as { current?: number; total?: number } | undefined;
      if (msg.status === 'Downloading' && pd?.total && pd.current) sawBytes = true;
    });
    for (const s of ['Pulling from tools/busybox', 'Pulling fs layer', 'Verifying Checksum', 'Download complete', 'Extracting', 'Pull complete', `Digest: ${pushedDigest}`, `Status: Downloaded newer image for ${name}`]) {
      assert.ok(statuses.includes(s), `${s} in ${JSON.stringify(statuses)}`);
    }
    assert.ok(sawBytes, 'Downloading carries progressDetail');
    const ins = await inspect(b, name);
    assert.equal(ins.Id, imageId, 'image ID = config digest, the same on both daemons');
    assert.deepEqual(ins.RepoDigests, [`${reg.host}/tools/busybox@${pushedDigest}`]);
    const run = await b.docker(['run', '--rm', name, 'echo', 'pulled']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'pulled');
    const again = await b.docker(['pull', name]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Status: Image is up to date/);
  });

  test('pull by digest, berth pull, and the docker run auto-pull path', async () => {
    assert.equal((await b.docker(['rmi', `${reg.host}/tools/busybox:1.0`])).code, 0);
    const byDigest = await b.docker(['pull', `${reg.host}/tools/busybox@${pushedDigest}`]);
    assert.equal(byDigest.code, 0, byDigest.stderr);
    assert.match(byDigest.stdout, new RegExp(`Digest: ${pushedDigest}`));
    const list = await b.docker(['images', '--digests', '--format', '{{.Repository}} {{.Tag}} {{.Digest}}']);
    assert.match(list.stdout, new RegExp(`${reg.host}/tools/busybox <none> ${pushedDigest}`));
    assert.equal((await b.docker(['rmi', `${reg.host}/tools/busybox@${pushedDigest}`])).code, 0);

    const bp = await b.berth(['pull', `${reg.host}/tools/busybox:1.0`]);
    assert.equal(bp.code, 0, bp.stderr);
    assert.match(bp.stdout, /Pull complete/);
    assert.match(bp.stdout.trim(), new RegExp(`${reg.host}/tools/busybox:1.0$`));
    assert.equal((await b.docker(['rmi', `${reg.host}/tools/busybox:1.0`])).code, 0);

    const run = await b.docker(['run', '--rm', `${reg.host}/tools/busybox:1.0`, 'echo', 'auto']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /Unable to find image/);
    assert.equal(run.stdout.trim(), 'auto');
    assert.equal((await b.docker(['rmi', `${reg.host}/tools/busybox:1.0`])).code, 0);
    const berthRun = await b.berth(['run', '--rm', `${reg.host}/tools/busybox:1.0`, 'echo', 'auto2']);
    assert.equal(berthRun.code, 0, berthRun.stderr);
    assert.equal(berthRun.stdout.trim(), 'auto2');
  });

  test('berth push of a pulled image is a copy; another repository mounts the blobs', async () => {
    const copy = await b.berth(['push', `${reg.host}/tools/busybox:1.0`]);
    assert.equal(copy.code, 0, copy.stderr);
    assert.match(copy.stdout, /Layer already exists/);
    assert.match(copy.stdout, new RegExp(`digest: ${pushedDigest}`));
    assert.equal((await b.berth(['tag', `${reg.host}/tools/busybox:1.0`, `${reg.host}/other/copy:2`])).code, 0);
    const mounted = await b.berth(['push', `${reg.host}/other/copy:2`]);
    assert.equal(mounted.code, 0, mounted.stderr);
    assert.match(mounted.stdout, /Mounted from tools\/busybox/);
    assert.match(mounted.stdout, new RegExp(`digest: ${pushedDigest}`));
  });

  test('two pulls of the same image at once share the work', async () => {
    await b.docker(['rmi', '-f', `${reg.host}/tools/busybox:1.0`, `${reg.host}/other/copy:2`]);
    const logBefore = (await b.log()).length;
    const [x, y] = await Promise.all([b.docker(['pull', `${reg.host}/tools/busybox:1.0`]), b.berth(['pull', `${reg.host}/other/copy:2`])]);
    assert.equal(x.code, 0, x.stderr);
    assert.equal(y.code, 0, y.stderr);
    assert.equal((await inspect(b, `${reg.host}/tools/busybox:1.0`)).Id, (await inspect(b, `${reg.host}/other/copy:2`)).Id);
    const downloads = (await b.log()).slice(logBefore).split('\n').filter((l) => l.includes('layer pulled'));
    assert.equal(downloads.length, 1, 'one download for both');
    await assertNoLeftovers(b);
  });

  test('multi-platform index: the host platform by default, --platform picks another; zstd and plain layers', async () => {
    const tar = await busyboxRootfsTar();
    const amd64 = await uploadImage(reg.url, 'multi', { layerTar: tar, compression: 'zstd', architecture: 'amd64', cmd: ['echo', 'zstd layer'] });
    const arm64 = await uploadImage(reg.url, 'multi', { layerTar: tar, compression: 'none', architecture: 'arm64' });
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: arm64.digest, size: arm64.size, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amd64.digest, size: amd64.size, platform: { os: 'linux', architecture: 'amd64' } },
      ],
    };
    const idx = await putManifest(reg.url, 'multi', 'v1', index, index.mediaType);
    const p = await b.docker(['pull', `${reg.host}/multi:v1`]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, new RegExp(`Digest: ${idx.digest}`), 'the digest shown is the index digest');
    const host = await inspect(b, `${reg.host}/multi:v1`);
    assert.equal(host.Id, amd64.configDigest);
    assert.equal(host.Architecture, 'amd64');
    assert.deepEqual(host.RepoDigests, [`${reg.host}/multi@${idx.digest}`]);
    const run = await b.docker(['run', '--rm', `${reg.host}/multi:v1`]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'zstd layer');
    const arm = await b.berth(['pull', '--platform', 'linux/arm64', `${reg.host}/multi:v1`]);
    assert.equal(arm.code, 0, arm.stderr);
    const armImage = await inspect(b, `${reg.host}/multi:v1`);
    assert.equal(armImage.Id, arm64.configDigest);
    assert.equal(armImage.Architecture, 'arm64');
    const none = await b.docker(['pull', '--platform', 'linux/s390x', `${reg.host}/multi:v1`]);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /no matching manifest for linux\/s390x/);
  });

  test('a short name resolves through --registry-mirror', async () => {
    const tar = await busyboxRootfsTar();
    await uploadImage(reg.url, 'library/mirrored', { layerTar: tar, compression: 'gzip', architecture: 'amd64', tag: 'latest', cmd: ['echo', 'from the mirror'] });
    const m = await TestDaemon.start({ busybox: false, args: ['--registry-mirror', `http://${reg.host}`] });
    try {
      const r = await m.docker(['run', '--rm', 'mirrored']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'from the mirror');
      const ins = await inspect(m, 'mirrored');
      assert.deepEqual(ins.RepoTags, ['mirrored:latest']);
      assert.match(ins.RepoDigests[0], /^mirrored@sha256:/);
    } finally {
      await m.cleanup();
    }
  });
});

describe('registry auth', () => {
  const user = { username: 'berth', password: 's3cret-pw' };
  let basic: TestRegistry;
  let token: TestRegistry;
  let d: TestDaemon;
  before(async () => {
    [basic, token, d] = await Promise.all([TestRegistry.start({ basic: user }), TestRegistry.start({ token: user }), TestDaemon.start()]);
  });
  after(async () => {
    await d?.cleanup();
    await Promise.all([basic?.stop(), token?.stop()]);
  });

  test('htpasswd Basic: refused without login, docker login then push and pull; wrong password refused', async () => {
    const name = `${basic.host}/secure/busybox:1`;
    assert.equal((await d.docker(['tag', 'busybox', name])).code, 0);
    const anonymous = await d.docker(['push', name]);
    assert.notEqual(anonymous.code, 0);
    assert.match(anonymous.stderr + anonymous.stdout, /access denied|authentication required|unauthorized/i);
    const wrong = await d.docker(['login', '-u', user.username, '--password-stdin', basic.host], { input: 'nope\n' });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /401|unauthorized/i);
    const login = await d.docker(['login', '-u', user.username, '--password-stdin', basic.host], { input: `${user.password}\n` });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Login Succeeded/);
    const push = await d.docker(['push', name]);
    assert.equal(push.code, 0, push.stderr);
    assert.equal((await d.docker(['rmi', name])).code, 0);
    const pull = await d.docker(['pull', name]);
    assert.equal(pull.code, 0, pull.stderr);
    assert.equal((await d.docker(['logout', basic.host])).code, 0);
    assert.equal((await d.docker(['rmi', name])).code, 0);
    const denied = await d.docker(['pull', name]);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /pull access denied|unauthorized|authentication required/i);
  });

  test('token auth: berth login, push and pull with tokens for the right scopes; anonymous refused', async () => {
    const name = `${token.host}/team/app:2`;
    assert.equal((await d.berth(['tag', 'busybox', name])).code, 0);
    const anonymous = await d.berth(['push', name]);
    assert.notEqual(anonymous.code, 0);
    const wrong = await d.berth(['login', '-u', user.username, '--password-stdin', token.host], { input: 'nope\n' });
    assert.notEqual(wrong.code, 0);
    const login = await d.berth(['login', '-u', user.username, '--password-stdin', token.host], { input: `${user.password}\n` });
    assert.equal(login.code, 0, login.stderr);
    const push = await d.berth(['push', name]);
    assert.equal(push.code, 0, push.stderr);
    assert.ok(token.tokenRequests.some((t) => t.user === user.username && t.scope.includes('repository:team/app:pull,push')), JSON.stringify(token.tokenRequests));
    assert.equal((await d.berth(['rmi', name])).code, 0);
    const pull = await d.docker(['pull', name]);
    assert.equal(pull.code, 0, pull.stderr);
  });

  test('credentials never reach the daemon log', async () => {
    const log = await d.log();
    assert.ok(log.length > 0);
    assert.ok(!log.includes(user.password), 'the password is not logged');
    assert.ok(!log.includes(Buffer.from(`${user.username}:${user.password}`).toString('base64')), 'nor its Basic form');
  });
});

describe('bad input from registries leaves nothing behind', () => {
  let reg: TestRegistry;
  let d: TestDaemon;
  before(async () => {
    [reg, d] = await Promise.all([TestRegistry.start(), TestDaemon.start()]);
  });
  after(async () => {
    await d?.cleanup();
    await reg?.stop();
  });

  async function failsWith(image: string, message: RegExp): Promise<void> {
    const before = (await d.docker(['images', '-q'])).stdout;
    for (const cli of ['docker', 'berth'] as const) {
      const r = await d[cli](['pull', image]);
      assert.notEqual(r.code, 0, `${cli} pull ${image} should fail`);
      assert.match(r.stderr + r.stdout, message, `${cli}: ${r.stderr}`);
    }
    assert.equal((await d.docker(['images', '-q'])).stdout, before, 'no image appeared');
    await assertNoLeftovers(d);
    assert.equal((await d.docker(['version'])).code, 0, 'the daemon still serves');
  }

  test('unknown registry, unknown repository and tag, bad names', async () => {
    await failsWith('127.0.0.1:1/nothing:here', /connect ECONNREFUSED|connection refused/);
    await failsWith(`${reg.host}/nothing:here`, /manifest for .*nothing:here not found|manifest unknown/);
    await failsWith(`${reg.host}/Bad_Name`, /invalid reference format/);
  });

  test('a manifest whose bytes do not match its digest', async () => {
    const img = await uploadImage(reg.url, 'damaged/manifest', { layerTar: await uniqueTar(), compression: 'gzip', architecture: 'amd64', tag: 'v1' });
    const file = reg.blobPath(img.digest);
    const bytes = await fsp.readFile(file);
    await fsp.writeFile(file, Buffer.from(bytes.toString('utf8').replace('"schemaVersion":2', '"schemaVersion": 2 ')));
    await failsWith(`${reg.host}/damaged/manifest@${img.digest}`, /manifest verification failed for digest/);
  });

  test('a layer whose bytes do not match its digest', async () => {
    const img = await uploadImage(reg.url, 'damaged/layer', { layerTar: await uniqueTar(), compression: 'gzip', architecture: 'amd64', tag: 'v1' });
    const file = reg.blobPath(img.layerDigest);
    const bytes = await fsp.readFile(file);
    bytes[bytes.length - 20] ^= 0xff; // same size, different content
    await fsp.writeFile(file, bytes);
    await failsWith(`${reg.host}/damaged/layer:v1`, /verification failed for digest|digest mismatch|does not match/);
  });

  test('a layer whose gzip breaks halfway (its digest matches): the pull fails at once, nothing left', async () => {
    // 20 MB of incompressible files: the download is still running when the unpacking fails
    const tarStream = (await import('tar-stream')).default;
    const pack = tarStream.pack();
    for (let i = 0; i < 40; i++) pack.entry({ name: `d/f${i}` }, crypto.randomBytes(512 << 10));
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    const tar = Buffer.concat(chunks);
    const gz = (await import('node:zlib')).gzipSync(tar);
    gz.fill(0xff, gz.length >> 2, (gz.length >> 2) + 4096);
    const { uploadBlob } = await import('../helpers/oci.js');
    const layer = await uploadBlob(reg.url, 'damaged/gzip', gz);
    const c = await uploadBlob(reg.url, 'damaged/gzip', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(tar)] } })));
    await putManifest(
      reg.url,
      'damaged/gzip',
      'v1',
      {
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: c.digest, size: c.size },
        layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: layer.digest, size: layer.size }],
      },
      'application/vnd.docker.distribution.manifest.v2+json',
    );
    const started = Date.now();
    await failsWith(`${reg.host}/damaged/gzip:v1`, /invalid tar archive|gzip: /);
    // it used to wait for the unpacker to take more bytes, forever
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
  });

  test('a layer whose content does not match the diffID of its config', async () => {
    const img = await uploadImage(reg.url, 'damaged/diffid', { layerTar: await uniqueTar(), compression: 'gzip', architecture: 'amd64', tag: 'v1' });
    // a config that claims another diffID, in a new manifest over the same layer
    const cfg = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256('not this layer')] } };
    const { uploadBlob } = await import('../helpers/oci.js');
    const c = await uploadBlob(reg.url, 'damaged/diffid', Buffer.from(JSON.stringify(cfg)));
    const layerSize = (await fsp.stat(reg.blobPath(img.layerDigest))).size;
    await putManifest(
      reg.url,
      'damaged/diffid',
      'v2',
      {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: c.digest, size: c.size },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: img.layerDigest, size: layerSize }],
      },
      'application/vnd.oci.image.manifest.v1+json',
    );
    await failsWith(`${reg.host}/damaged/diffid:v2`, /does not match the image config/);
  });

  test('unsupported media types', async () => {
    await uploadImage(reg.url, 'odd/artifact', { layerTar: await uniqueTar(), compression: 'gzip', architecture: 'amd64', tag: 'v1', configMediaType: 'application/vnd.cncf.helm.config.v1+json' });
    await failsWith(`${reg.host}/odd/artifact:v1`, /unsupported media type application\/vnd.cncf.helm.config.v1\+json/);
    await uploadImage(reg.url, 'odd/layer', { layerTar: await uniqueTar(), compression: 'gzip', architecture: 'amd64', tag: 'v1', layerMediaType: 'application/x-berth-unknown' });
    await failsWith(`${reg.host}/odd/layer:v1`, /unsupported media type application\/x-berth-unknown/);
  });

  test('push of a missing image and to an unknown registry', async () => {
    const r = await d.docker(['push', `${reg.host}/absent:1`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /An image does not exist locally with the tag/);
    assert.equal((await d.docker(['tag', 'busybox', '127.0.0.1:1/busybox:1'])).code, 0);
    const unreachable = await d.berth(['push', '127.0.0.1:1/busybox:1']);
    assert.notEqual(unreachable.code, 0);
    assert.match(unreachable.stderr, /ECONNREFUSED|connection refused/);
  });
});

describe('interrupted pulls', () => {
  let reg: TestRegistry;
  let d: TestDaemon;
  let image = '';
  before(async () => {
    [reg, d] = await Promise.all([TestRegistry.start(), TestDaemon.start({ busybox: false })]);
    // an uncompressed layer: big enough (2 MB) to cut in the middle
    await uploadImage(reg.url, 'big/busybox', { layerTar: await busyboxRootfsTar(), compression: 'none', architecture: 'amd64', tag: 'v1', cmd: ['echo', 'resumed'] });
    image = 'big/busybox:v1';
  });
  after(async () => {
    await d?.cleanup();
    await reg?.stop();
  });

  test('a connection cut mid-layer resumes with Range', async () => {
    const proxy = await RegistryProxy.start(reg.host, { cutFirstBlobAfter: 700_000 });
    try {
      const r = await d.docker(['pull', `${proxy.host}/${image}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(proxy.rangeRequests >= 1, `a Range request followed the cut (${proxy.blobRequests} blob requests)`);
      const run = await d.docker(['run', '--rm', `${proxy.host}/${image}`]);
      assert.equal(run.stdout.trim(), 'resumed');
      assert.match(await d.log(), /blob download interrupted, resuming/);
      assert.equal((await d.docker(['rmi', `${proxy.host}/${image}`])).code, 0);
    } finally {
      await proxy.stop();
    }
  });

  test('berthd killed -9 mid-pull: no half image after restart, nothing orphaned, a new pull completes', async () => {
    const proxy = await RegistryProxy.start(reg.host, { blobBytesPerSecond: 400_000 });
    try {
      const name = `${proxy.host}/${image}`;
      const pulling = d.docker(['pull', name]);
      // wait until layer bytes are on disk (in ingest/) and in the unpack draft
      await eventually(() => proxy.bytesServed > 300_000, 20_000, 'the download to start');
      assert.ok((await fsp.readdir(path.join(d.dataRoot, 'content/ingest'))).length > 0, 'layer bytes are in ingest/');
      await d.stopDaemon('SIGKILL');
      const cli = await pulling;
      assert.notEqual(cli.code, 0);
      await d.launch();
      const list = await d.docker(['images', '-a', '--format', '{{.Repository}}:{{.Tag}}']);
      assert.ok(!list.stdout.includes('big/busybox'), list.stdout);
      await assertNoLeftovers(d);
      const blobs = await fsp.readdir(path.join(d.dataRoot, 'content/blobs/sha256'));
      assert.deepEqual(blobs, [], 'no orphaned blobs');
      const again = await d.docker(['pull', name]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal((await d.docker(['run', '--rm', name])).stdout.trim(), 'resumed');
    } finally {
      await proxy.stop();
    }
  });
});

describe('HTTPS registries', () => {
  let reg: TestRegistry;
  let certsDir = '';
  before(async () => {
    reg = await TestRegistry.start({ tls: true });
    certsDir = await fsp.mkdtemp('/tmp/btcerts-');
    await fsp.mkdir(path.join(certsDir, reg.host), { recursive: true });
    await fsp.copyFile(reg.caFile, path.join(certsDir, reg.host, 'ca.crt'));
  });
  after(async () => {
    await reg?.stop();
    await fsp.rm(certsDir, { recursive: true, force: true });
  });

  test('a per-registry CA file makes a self-signed registry trusted; without it the certificate is refused; --insecure-registry skips the check', async () => {
    const trusted = await TestDaemon.start({ args: ['--registry-certs-dir', certsDir] });
    const untrusted = await TestDaemon.start({ busybox: false, args: ['--registry-certs-dir', path.join(certsDir, 'none')] });
    const insecure = await TestDaemon.start({ busybox: false, args: ['--registry-certs-dir', path.join(certsDir, 'none'), '--insecure-registry', reg.host] });
    try {
      const name = `${reg.host}/tls/busybox:1`;
      assert.equal((await trusted.docker(['tag', 'busybox', name])).code, 0);
      const push = await trusted.docker(['push', name]);
      assert.equal(push.code, 0, push.stderr);
      const refused = await untrusted.docker(['pull', name]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /self[- ]signed certificate|unable to verify|certificate/i);
      const pulled = await insecure.docker(['pull', name]);
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.equal((await trusted.docker(['rmi', name])).code, 0);
      const again = await trusted.docker(['pull', name]);
      assert.equal(again.code, 0, again.stderr);
    } finally {
      await Promise.all([trusted.cleanup(), untrusted.cleanup(), insecure.cleanup()]);
    }
  });
});

describe('layers pulled as "Already exists"', () => {
  let reg: TestRegistry;
  let d: TestDaemon;
  before(async () => {
    [reg, d] = await Promise.all([TestRegistry.start(), TestDaemon.start({ busybox: false })]);
  });
  after(async () => {
    await d?.cleanup();
    await reg?.stop();
  });

  test('a layer skipped because it was imported stays usable for save and push after the importing image is gone', async () => {
    const tar = await busyboxRootfsTar();
    assert.equal((await d.docker(['import', '-', 'local:1'], { input: tar })).code, 0);
    await uploadImage(reg.url, 'shared/base', { layerTar: tar, compression: 'gzip', architecture: 'amd64', tag: 'v1', cmd: ['echo', 'shared'] });
    const pull = await d.docker(['pull', `${reg.host}/shared/base:v1`]);
    assert.equal(pull.code, 0, pull.stderr);
    assert.match(pull.stdout, /Already exists/);
    assert.equal((await d.docker(['rmi', 'local:1'])).code, 0);
    const save = await d.berth(['save', '-o', path.join(d.dir, 'shared.tar'), `${reg.host}/shared/base:v1`]);
    assert.equal(save.code, 0, save.stderr);
    assert.equal((await d.docker(['tag', `${reg.host}/shared/base:v1`, `${reg.host}/shared/copy:v1`])).code, 0);
    const push = await d.docker(['push', `${reg.host}/shared/copy:v1`]);
    assert.equal(push.code, 0, push.stderr);
    assert.equal((await d.docker(['run', '--rm', `${reg.host}/shared/base:v1`])).stdout.trim(), 'shared');
  });
});
