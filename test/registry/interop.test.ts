/**
 * Real clients against a real Berth registry process: skopeo copies both
 * ways between an OCI layout and the registry, podman pulls and pushes, and a
 * real dockerd (started here on its own socket and data root) logs in, pulls
 * and pushes. Each with auth off, with Basic (htpasswd) and with the Bearer
 * token service. A missing tool fails the test with the package to install.
 */
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { basicAuth, writeHtpasswd } from './helpers/auth-files.js';
import { type Dockerd, startDockerd } from './helpers/dockerd.js';
import { request } from './helpers/http.js';
import { type Image, makeImage, writeOciLayout } from './helpers/images.js';
import { type ServerProcess, removeDir, requireTool, run, startBerth, tempDir } from './helpers/procs.js';

const USER = 'alice';
const PASSWORD = 'wonder-land-42';

describe('interop with real clients', () => {
  let work: string;
  let open: ServerProcess; // no auth
  let basic: ServerProcess; // htpasswd Basic
  let token: ServerProcess; // Bearer token service, htpasswd users
  let image: Image;
  let layout: string;

  before(async () => {
    requireTool('skopeo', 'skopeo');
    requireTool('podman', 'podman');
    work = await tempDir('interop');
    const htpasswd = await writeHtpasswd(work, { [USER]: PASSWORD });
    [open, basic, token] = await Promise.all([
      startBerth(),
      startBerth({ args: ['--htpasswd', htpasswd] }),
      startBerth({ args: ['--htpasswd', htpasswd, '--token-auth'] }),
    ]);
    image = await makeImage({ layers: 3, layerBytes: 200_000 });
    layout = path.join(work, 'layout');
    await writeOciLayout(layout, image, 'v1');
  });

  after(async () => {
    for (const s of [open, basic, token]) {
      if (s === undefined) continue;
      await s.stop();
      await removeDir(s.root);
    }
    if (work !== undefined) await removeDir(work);
  });

  /** The manifest digest a registry serves for a reference, checked with the given auth header. */
  async function servedDigest(server: ServerProcess, ref: string, auth?: string): Promise<string | undefined> {
    const headers: Record<string, string> = { Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' };
    if (auth !== undefined) headers.Authorization = auth;
    const res = await request('HEAD', `${server.url}/v2/${ref}`, { headers });
    return res.status === 200 ? String(res.headers['docker-content-digest']) : undefined;
  }

  describe('skopeo', () => {
    for (const mode of ['no auth', 'basic', 'token'] as const) {
      it(`copies an OCI layout to the registry and back, byte-exact (${mode})`, async () => {
        const server = mode === 'no auth' ? open : mode === 'basic' ? basic : token;
        const creds = mode === 'no auth' ? [] : [`--dest-creds=${USER}:${PASSWORD}`];
        const srcCreds = mode === 'no auth' ? [] : [`--src-creds=${USER}:${PASSWORD}`];
        run('skopeo', ['copy', '--dest-tls-verify=false', ...creds, `oci:${layout}:v1`, `docker://${server.host}/skopeo/img:v1`]);
        const auth = mode === 'no auth' ? undefined : basicAuth(USER, PASSWORD);
        if (mode !== 'token') assert.equal(await servedDigest(server, 'skopeo/img/manifests/v1', auth), image.manifestDigest);
        const back = path.join(work, `back-${mode.replace(' ', '-')}`);
        run('skopeo', ['copy', '--src-tls-verify=false', ...srcCreds, `docker://${server.host}/skopeo/img:v1`, `oci:${back}:v1`]);
        const index = JSON.parse(await fsp.readFile(path.join(back, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
        assert.equal(index.manifests[0]!.digest, image.manifestDigest);
        for (const blob of [image.config, ...image.layers]) {
          assert.deepEqual(await fsp.readFile(path.join(back, 'blobs', 'sha256', blob.digest.slice(7))), blob.data);
        }
      });
    }

    it('is refused without credentials, and with wrong ones', async () => {
      for (const server of [basic, token]) {
        const none = run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${server.host}/skopeo/denied:v1`], { allowFail: true });
        assert.notEqual(none.status, 0);
        assert.match(none.stderr, /unauthorized|authentication required|401/i);
        const wrong = run('skopeo', ['copy', '--dest-tls-verify=false', `--dest-creds=${USER}:nope`, `oci:${layout}:v1`, `docker://${server.host}/skopeo/denied:v1`], { allowFail: true });
        assert.notEqual(wrong.status, 0);
      }
    });
  });

  describe('podman', () => {
    let podmanDir: string;
    const podman = (args: string[], allowFail = false): ReturnType<typeof run> =>
      run(
        'podman',
        [
          '--root', path.join(podmanDir, 'root'), '--runroot', path.join(podmanDir, 'run'),
          '--storage-driver', 'vfs', '--events-backend', 'none', '--cgroup-manager', 'cgroupfs',
          ...args,
        ],
        { allowFail },
      );
    before(async () => {
      podmanDir = await tempDir('podman');
      run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${open.host}/podman/src:v1`]);
    });
    after(async () => {
      if (podmanDir === undefined) return;
      podman(['rmi', '--all', '--force'], true);
      const mounts = (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4]).filter((m) => m?.startsWith(podmanDir));
      for (const m of mounts) run('umount', ['-l', m!], { allowFail: true });
      await removeDir(podmanDir);
    });

    it('pulls and pushes without auth', () => {
      podman(['pull', '--tls-verify=false', `${open.host}/podman/src:v1`]);
      podman(['push', '--tls-verify=false', `${open.host}/podman/src:v1`, `${open.host}/podman/pushed:v1`]);
    });

    for (const mode of ['basic', 'token'] as const) {
      it(`logs in, pushes and pulls (${mode})`, async () => {
        const server = mode === 'basic' ? basic : token;
        const authfile = path.join(podmanDir, `auth-${mode}.json`);
        podman(['login', '--tls-verify=false', '--authfile', authfile, '-u', USER, '-p', PASSWORD, server.host]);
        const bad = podman(['login', '--tls-verify=false', '--authfile', path.join(podmanDir, 'bad.json'), '-u', USER, '-p', 'wrong', server.host], true);
        assert.notEqual(bad.status, 0);
        podman(['pull', '--tls-verify=false', `${open.host}/podman/src:v1`]);
        podman(['push', '--tls-verify=false', '--authfile', authfile, `${open.host}/podman/src:v1`, `${server.host}/podman/${mode}:v1`]);
        podman(['rmi', '--all', '--force']);
        const anonymous = podman(['pull', '--tls-verify=false', `${server.host}/podman/${mode}:v1`], true);
        assert.notEqual(anonymous.status, 0, 'pull without credentials must fail');
        podman(['pull', '--tls-verify=false', '--authfile', authfile, `${server.host}/podman/${mode}:v1`]);
        const images = podman(['images', '--format', '{{.Repository}}:{{.Tag}}']).stdout;
        assert.match(images, new RegExp(`podman/${mode}:v1`));
      });
    }
  });

  describe('dockerd', () => {
    let dockerd: Dockerd;
    before(async () => {
      dockerd = await startDockerd();
      run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${open.host}/docker/src:v1`]);
    });
    after(async () => {
      if (dockerd !== undefined) await dockerd.stop();
    });

    it('pulls and pushes without auth', async () => {
      dockerd.docker(['pull', `${open.host}/docker/src:v1`]);
      // A fresh registry: every layer is really uploaded, not mounted.
      dockerd.docker(['tag', `${open.host}/docker/src:v1`, `${basic.host}/docker/anon:v1`]);
      dockerd.docker(['tag', `${open.host}/docker/src:v1`, `${open.host}/docker/pushed:v2`]);
      const out = dockerd.docker(['push', `${open.host}/docker/pushed:v2`]).stdout;
      const digest = /digest: (sha256:[a-f0-9]{64})/.exec(out)?.[1];
      assert.ok(digest, out);
      assert.equal(await servedDigest(open, 'docker/pushed/manifests/v2'), digest);
    });

    for (const mode of ['basic', 'token'] as const) {
      it(`docker login, push (real uploads) and pull (${mode})`, async () => {
        const server = mode === 'basic' ? basic : token;
        const refused = dockerd.docker(['push', `${basic.host}/docker/anon:v1`], { allowFail: true });
        if (mode === 'basic') assert.notEqual(refused.status, 0, 'push without login must fail');
        const wrong = dockerd.docker(['login', '-u', USER, '--password-stdin', server.host], { input: 'wrong\n', allowFail: true });
        assert.notEqual(wrong.status, 0, 'login with a wrong password must fail');
        dockerd.docker(['login', '-u', USER, '--password-stdin', server.host], { input: `${PASSWORD}\n` });
        if (mode === 'token') {
          // dockerd got a refresh token from /token (offline_token=true); the CLI keeps it as the
          // identity token and later pushes trade it at POST /token (grant_type=refresh_token).
          const config = JSON.parse(await fsp.readFile(path.join(dockerd.env.DOCKER_CONFIG, 'config.json'), 'utf8')) as { auths: Record<string, { identitytoken?: string }> };
          assert.ok(config.auths[server.host]?.identitytoken, JSON.stringify(config));
        }
        const ref = `${server.host}/docker/${mode}:v1`;
        dockerd.docker(['tag', `${open.host}/docker/src:v1`, ref]);
        const out = dockerd.docker(['push', ref]).stdout;
        const digest = /digest: (sha256:[a-f0-9]{64})/.exec(out)?.[1];
        assert.ok(digest, out);
        assert.equal(await servedDigest(server, `docker/${mode}/manifests/v1`, basicAuth(USER, PASSWORD)), digest);
        dockerd.docker(['rmi', ref]);
        dockerd.docker(['pull', ref]);
        dockerd.docker(['logout', server.host]);
        const afterLogout = dockerd.docker(['pull', `${server.host}/docker/${mode}:v1`], { allowFail: true });
        assert.notEqual(afterLogout.status, 0, 'pull after logout must fail');
      });
    }
  });
});
