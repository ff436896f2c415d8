/**
 * The Engine API surface against a real berthd: negotiation headers, error
 * shapes, images (import, list, inspect, tag, rmi, history, prune) and bad
 * input, through the real docker CLI, the berth CLI and raw HTTP.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { TestDaemon, busyboxRootfsTar } from '../helpers/daemon.js';

function rawRequest(
  socket: string,
  method: string,
  p: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path: p, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('Engine API basics', () => {
  let d: TestDaemon;
  before(async () => {
    d = await TestDaemon.start();
  });
  after(async () => {
    await d.cleanup();
  });

  test('ping carries the negotiation headers', async () => {
    for (const method of ['GET', 'HEAD']) {
      const r = await rawRequest(d.socket, method, '/_ping');
      assert.equal(r.status, 200);
      assert.equal(r.headers['api-version'], '1.44');
      assert.equal(r.headers['ostype'], 'linux');
      assert.equal(r.headers['docker-experimental'], 'false');
      assert.equal(r.headers['swarm'], 'inactive');
      assert.ok(r.headers['server']);
      if (method === 'GET') assert.equal(r.body, 'OK');
    }
  });

  test('versioned and unversioned paths; too new and too old versions', async () => {
    assert.equal((await rawRequest(d.socket, 'GET', '/v1.24/version')).status, 200);
    assert.equal((await rawRequest(d.socket, 'GET', '/version')).status, 200);
    const tooNew = await rawRequest(d.socket, 'GET', '/v1.99/version');
    assert.equal(tooNew.status, 400);
    assert.equal(tooNew.headers['content-type'], 'application/json');
    assert.match(JSON.parse(tooNew.body).message, /client version 1.99 is too new. Maximum supported API version is 1.44/);
    const tooOld = await rawRequest(d.socket, 'GET', '/v1.12/version');
    assert.equal(tooOld.status, 400);
    const v = JSON.parse((await rawRequest(d.socket, 'GET', '/version')).body);
    assert.equal(v.ApiVersion, '1.44');
    const unknown = await rawRequest(d.socket, 'GET', '/v1.44/nope');
    assert.equal(unknown.status, 404);
    assert.equal(JSON.parse(unknown.body).message, 'page not found');
  });

  test('docker version and info render against berthd', async () => {
    const v = await d.docker(['version', '--format', '{{.Server.APIVersion}}']);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout.trim(), '1.44');
    const info = await d.docker(['info', '--format', '{{.Driver}} {{.CgroupDriver}} {{.Images}}']);
    assert.equal(info.code, 0, info.stderr);
    assert.equal(info.stdout.trim(), 'overlay2 cgroupfs 1');
  });

  test('errors have Docker status codes and JSON bodies', async () => {
    const missing = await rawRequest(d.socket, 'GET', '/v1.44/containers/nope/json');
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['content-type'], 'application/json');
    assert.equal(JSON.parse(missing.body).message, 'No such container: nope');
    const noImage = await rawRequest(d.socket, 'GET', '/v1.44/images/nope/json');
    assert.equal(JSON.parse(noImage.body).message, 'No such image: nope:latest');
  });

  test('malformed JSON and wrong field types are 400 and create nothing', async () => {
    const before = (await d.client.json<unknown[]>('GET', '/containers/json', { query: { all: true } })).length;
    const cases: [string, RegExp][] = [
      ['{not json', /invalid JSON/],
      ['[1,2]', /cannot unmarshal array/],
      ['{"Image":"busybox","Cmd":42}', /Cmd of type \[\]string/],
      ['{"Image":"busybox","Env":"A=1"}', /Env of type \[\]string/],
      ['{"Image":"busybox","HostConfig":{"Memory":"lots"}}', /HostConfig.Memory/],
      ['{"Image":"busybox","Labels":{"a":1}}', /Labels.a/],
      ['{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}', /invalid restart policy/],
      ['{"Image":"busybox","HostConfig":{"Memory":1024}}', /Minimum memory limit allowed is 6MB/],
      ['{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"json-file","Config":{"max-size":"x"}}}}', /max-size/],
    ];
    for (const [body, message] of cases) {
      const r = await rawRequest(d.socket, 'POST', '/v1.44/containers/create', body, { 'Content-Type': 'application/json' });
      assert.equal(r.status, 400, body);
      assert.match(JSON.parse(r.body).message, message, body);
    }
    const bad = await rawRequest(d.socket, 'POST', '/v1.44/containers/create?name=bad%20name', '{"Image":"busybox","Cmd":["true"]}');
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).message, /Invalid container name/);
    const noImage = await rawRequest(d.socket, 'POST', '/v1.44/containers/create', '{"Image":"nope:1","Cmd":["true"]}');
    assert.equal(noImage.status, 404);
    assert.equal(JSON.parse(noImage.body).message, 'No such image: nope:1');
    const after = (await d.client.json<unknown[]>('GET', '/containers/json', { query: { all: true } })).length;
    assert.equal(after, before);
    // the daemon is still serving
    assert.equal((await rawRequest(d.socket, 'GET', '/_ping')).status, 200);
  });

  test('duplicate container names are 409 with Docker text', async () => {
    const a = await d.docker(['create', '--name', 'dup', 'busybox', 'true']);
    assert.equal(a.code, 0, a.stderr);
    const b = await d.docker(['create', '--name', 'dup', 'busybox', 'true']);
    assert.notEqual(b.code, 0);
    assert.match(b.stderr, /Conflict. The container name "\/dup" is already in use by container/);
    await d.docker(['rm', 'dup']);
  });
});

describe('images', () => {
  let d: TestDaemon;
  before(async () => {
    d = await TestDaemon.start();
  });
  after(async () => {
    await d.cleanup();
  });

  test('import with changes, list, inspect, history', async () => {
    const tar = await busyboxRootfsTar();
    const r = await d.docker(['import', '-c', 'ENV A=1', '-c', 'WORKDIR /srv', '-c', 'EXPOSE 8080', '-c', 'LABEL team=berth', '-c', 'CMD ["sh"]', '-m', 'hello', '-', 'imp:v1'], { input: tar });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), /^sha256:[a-f0-9]{64}$/);
    const id = r.stdout.trim();
    const ins = JSON.parse((await d.docker(['image', 'inspect', 'imp:v1'])).stdout)[0];
    assert.equal(ins.Id, id);
    assert.deepEqual(ins.RepoTags, ['imp:v1']);
    assert.deepEqual(ins.Config.Env, ['A=1']);
    assert.equal(ins.Config.WorkingDir, '/srv');
    assert.deepEqual(ins.Config.ExposedPorts, { '8080/tcp': {} });
    assert.deepEqual(ins.Config.Labels, { team: 'berth' });
    assert.equal(ins.Comment, 'hello');
    assert.ok(ins.ContainerConfig, 'ContainerConfig kept for API <= 1.44');
    assert.equal(ins.RootFS.Layers.length, 1);
    assert.ok(ins.Size > 1_000_000);
    const images = await d.docker(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
    assert.match(images.stdout, new RegExp(`imp:v1 ${id.slice(7, 19)}`));
    const filtered = await d.docker(['images', '--filter', 'label=team=berth', '-q']);
    assert.equal(filtered.stdout.trim(), id.slice(7, 19));
    const byRef = await d.docker(['images', 'imp', '-q']);
    assert.equal(byRef.stdout.trim(), id.slice(7, 19));
    const hist = await d.docker(['history', '--format', '{{.Comment}}', 'imp:v1']);
    assert.equal(hist.stdout.trim(), 'hello');
    // the same through berth
    const b = await d.berth(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.match(b.stdout, /imp:v1/);
  });

  test('the layer is unpacked once and shared by images with the same content', async () => {
    const tar = await busyboxRootfsTar();
    await d.docker(['import', '-', 'same:a'], { input: tar });
    await d.docker(['import', '-', 'same:b'], { input: tar });
    const layers = await fsp.readdir(path.join(d.dataRoot, 'snapshots', 'layers'));
    const diffs = new Set(
      (await Promise.all(['same:a', 'same:b', 'busybox'].map(async (n) => JSON.parse((await d.docker(['image', 'inspect', n])).stdout)[0].RootFS.Layers[0]))),
    );
    assert.equal(diffs.size, 1);
    assert.equal(layers.length, 1, 'one snapshot for one diffID');
  });

  test('tag, rmi with containers using the image, force, prune', async () => {
    assert.equal((await d.docker(['tag', 'busybox', 'bb:one'])).code, 0);
    assert.equal((await d.docker(['tag', 'busybox', 'localhost:5000/bb:two'])).code, 0);
    const tags = JSON.parse((await d.docker(['image', 'inspect', 'bb:one'])).stdout)[0].RepoTags.sort();
    assert.deepEqual(tags, ['bb:one', 'busybox:latest', 'localhost:5000/bb:two']);
    // an image referenced in several repositories cannot be deleted by ID without force
    const id = JSON.parse((await d.docker(['image', 'inspect', 'bb:one'])).stdout)[0].Id;
    const byId = await d.docker(['rmi', id.slice(7, 19)]);
    assert.notEqual(byId.code, 0);
    assert.match(byId.stderr, /referenced in multiple repositories/);
    const untag = await d.docker(['rmi', 'bb:one']);
    assert.equal(untag.code, 0, untag.stderr);
    assert.match(untag.stdout, /Untagged: bb:one/);
    assert.doesNotMatch(untag.stdout, /Deleted/);
    await d.docker(['rmi', 'localhost:5000/bb:two']);
    // a stopped container holds the image
    await d.docker(['import', '-', 'held:1'], { input: await busyboxRootfsTar() });
    await d.docker(['tag', 'held:1', 'held:2']);
    await d.docker(['rmi', 'held:2']);
    await d.docker(['create', '--name', 'holder', 'held:1', 'true']);
    const conflict = await d.docker(['rmi', 'held:1']);
    assert.notEqual(conflict.code, 0);
    assert.match(conflict.stderr, /container [a-f0-9]{12} is using its referenced image/);
    const pruned = await d.docker(['image', 'prune', '-a', '-f']);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.equal((await d.docker(['image', 'inspect', 'held:1'])).code, 0, 'in-use image survives prune -a');
    await d.docker(['rm', 'holder']);
    const rm = await d.docker(['rmi', 'held:1']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stdout, /Deleted: sha256:/);
    const missing = await d.docker(['rmi', 'nope:nope']);
    assert.match(missing.stderr, /No such image: nope:nope/);
  });

  test('not-a-tar, truncated and hostile archives are refused and leave nothing', async () => {
    const layersBefore = (await fsp.readdir(path.join(d.dataRoot, 'snapshots', 'layers'))).length;
    const blobsBefore = (await fsp.readdir(path.join(d.dataRoot, 'content', 'blobs', 'sha256'))).length;
    const notTar = await d.docker(['import', '-', 'junk:1'], { input: crypto.randomBytes(20_000) });
    assert.notEqual(notTar.code, 0);
    assert.match(notTar.stderr, /invalid tar/);
    const tar = await busyboxRootfsTar();
    const truncated = await d.docker(['import', '-', 'junk:2'], { input: tar.subarray(0, Math.floor(tar.length / 2) + 100) });
    assert.notEqual(truncated.code, 0);
    // hostile: an entry climbing out of the layer, built by hand
    const header = Buffer.alloc(512);
    header.write('../../../../tmp/berth-escape', 0);
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write('00000000004\0', 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    const body = Buffer.alloc(512);
    body.write('evil');
    const hostile = Buffer.concat([header, body, Buffer.alloc(1024)]);
    const evil = await d.docker(['import', '-', 'junk:3'], { input: hostile });
    assert.notEqual(evil.code, 0);
    assert.match(evil.stderr, /invalid tar entry/);
    await assert.rejects(fsp.stat('/tmp/berth-escape'));
    assert.equal((await fsp.readdir(path.join(d.dataRoot, 'snapshots', 'layers'))).length, layersBefore);
    assert.equal((await fsp.readdir(path.join(d.dataRoot, 'content', 'blobs', 'sha256'))).length, blobsBefore);
    assert.equal((await fsp.readdir(path.join(d.dataRoot, 'snapshots', 'drafts'))).length, 0);
    const images = await d.docker(['images', '--format', '{{.Repository}}']);
    assert.doesNotMatch(images.stdout, /junk/);
    const bad = await d.docker(['import', '-', 'Bad/Name'], { input: tar });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /must be lowercase|invalid reference/);
  });
});
