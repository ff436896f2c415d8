/**
 * Real Python clients against a real berthd: docker-compose 1.29 (Debian's
 * `docker-compose`) brings a two-service project up (published port, named
 * volume, DNS by service name and alias on the project network), recreates a
 * service after a config change (the volume's data kept), and takes it all
 * down again; docker-py 5 (Debian's `python3-docker`) runs, execs, reads logs,
 * streams a run's output, manages networks and volumes, and sees Docker's
 * start errors. Both only use
 * the local busybox image, so nothing is pulled.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { TestDaemon, exec, type ExecResult, httpGet } from '../helpers/daemon.js';

/** `web` serves `content` with httpd on 8080; `client` only idles. `init: true` so both stop at once on SIGTERM. */
function composeFile(content: string): string {
  return `version: "3.8"
services:
  web:
    image: busybox
    init: true
    command: sh -c 'mkdir -p /www && echo ${content} > /www/index.html && echo web starting && exec httpd -f -v -p 8080 -h /www'
    ports:
      - "127.0.0.1::8080"
    volumes:
      - data:/data
    networks:
      default:
        aliases:
          - webalias
  client:
    image: busybox
    init: true
    command: sh -c 'echo client up; exec sleep 3600'
    depends_on:
      - web
volumes:
  data:
`;
}

// Debian's clients, by path: a python3 earlier in PATH (pyenv) has its own docker package
const COMPOSE = '/usr/bin/docker-compose';
const PYTHON = '/usr/bin/python3';

interface Listed {
  Id: string;
  Name?: string;
}

describe('docker-compose and docker-py', () => {
  let d: TestDaemon;
  let work: string;
  before(async () => {
    d = await TestDaemon.start();
    // inside the daemon's own directory, so cleanup() removes it
    work = path.join(d.dir, 'clients');
    await fsp.mkdir(work);
  });
  after(async () => {
    await d.cleanup();
  });

  describe('docker-compose', () => {
    const project = 'bcp';
    let file: string;
    const compose = (args: string[]): Promise<ExecResult> => exec(COMPOSE, ['--no-ansi', '-p', project, '-f', file, ...args], { env: d.env(), timeoutMs: 30_000 });
    const ok = async (args: string[]): Promise<string> => {
      const r = await compose(args);
      assert.equal(r.code, 0, `docker-compose ${args.join(' ')}: ${r.stdout}${r.stderr}`);
      return r.stdout;
    };
    const labelled = async (kind: 'containers' | 'networks' | 'volumes'): Promise<string[]> => {
      const filters = JSON.stringify({ label: [`com.docker.compose.project=${project}`] });
      if (kind === 'volumes') {
        const r = await d.client.json<{ Volumes: Listed[] | null }>('GET', '/volumes', { query: { filters } });
        return (r.Volumes ?? []).map((v) => v.Name ?? '');
      }
      const list = await d.client.json<Listed[]>('GET', kind === 'containers' ? '/containers/json' : '/networks', { query: { all: true, filters } });
      return list.map((x) => x.Id);
    };

    before(async () => {
      const dir = path.join(work, 'project');
      await fsp.mkdir(dir);
      file = path.join(dir, 'docker-compose.yml');
      await fsp.writeFile(file, composeFile('hello-v1'));
    });

    test('up -d: containers, network and volume; port from the host; names between services; ps, exec, logs', async () => {
      const up = await compose(['up', '-d']);
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stderr, new RegExp(`Creating network "${project}_default"`));
      assert.match(up.stderr, new RegExp(`Creating volume "${project}_data"`));
      assert.doesNotMatch(up.stderr, /Pulling/);
      assert.equal((await labelled('containers')).length, 2);
      assert.equal((await labelled('networks')).length, 1);
      assert.deepEqual(await labelled('volumes'), [`${project}_data`]);

      const hostPort = (await ok(['port', 'web', '8080'])).trim();
      assert.match(hostPort, /^127\.0\.0\.1:\d+$/);
      assert.equal(await httpGet(`http://${hostPort}/`), 'hello-v1\n');

      // the service name, its alias and the container name resolve on the project network
      const fetched = await ok(['exec', '-T', 'client', 'sh', '-c', `wget -qO- http://web:8080/ && wget -qO- http://webalias:8080/ && wget -qO- http://${project}_web_1:8080/`]);
      assert.equal(fetched, 'hello-v1\n'.repeat(3));
      const failed = await compose(['exec', '-T', 'web', 'sh', '-c', 'echo to-stderr >&2; exit 3']);
      assert.equal(failed.code, 3);
      assert.match(failed.stderr, /to-stderr/);

      const ps = await ok(['ps']);
      assert.match(ps, new RegExp(`^${project}_web_1 .* Up .*127\\.0\\.0\\.1:\\d+->8080/tcp`, 'm'));
      assert.match(ps, new RegExp(`^${project}_client_1 .* Up`, 'm'));

      const logs = await ok(['logs', '--no-color']);
      assert.match(logs, /web_1 +\| web starting/);
      assert.match(logs, /client_1 +\| client up/);
      assert.match(logs, /web_1 +\| .*response:200/);
    });

    test('up -d after a config change recreates only that service and keeps its named volume', async () => {
      await ok(['exec', '-T', 'web', 'sh', '-c', 'echo kept > /data/f']);
      const before = await d.client.json<{ Id: string }>('GET', `/containers/${project}_web_1/json`);
      await fsp.writeFile(file, composeFile('hello-v2'));
      const up = await compose(['up', '-d']);
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stderr, new RegExp(`Recreating ${project}_web_1`));
      assert.match(up.stderr, new RegExp(`${project}_client_1 is up-to-date`));
      const after = await d.client.json<{ Id: string }>('GET', `/containers/${project}_web_1/json`);
      assert.notEqual(after.Id, before.Id);
      assert.equal(await ok(['exec', '-T', 'web', 'cat', '/data/f']), 'kept\n');
      assert.equal(await ok(['exec', '-T', 'client', 'wget', '-qO-', 'http://web:8080/']), 'hello-v2\n');
      const hostPort = (await ok(['port', 'web', '8080'])).trim();
      assert.equal(await httpGet(`http://${hostPort}/`), 'hello-v2\n');
      // nothing changed: nothing recreated
      const again = await compose(['up', '-d']);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, new RegExp(`${project}_web_1 is up-to-date`));
    });

    test('down -v removes the containers, the network and the named volume', async () => {
      const down = await compose(['down', '-v']);
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stderr, new RegExp(`Removing network ${project}_default`));
      assert.match(down.stderr, new RegExp(`Removing volume ${project}_data`));
      assert.deepEqual(await labelled('containers'), []);
      assert.deepEqual(await labelled('networks'), []);
      assert.deepEqual(await labelled('volumes'), []);
      assert.equal((await ok(['ps', '-q'])).trim(), '');
    });
  });

  test('docker-py: ping, version, run, exec, logs, networks, volumes, images, inspect, start errors', async () => {
    const script = path.join(work, 'dockerpy.py');
    await fsp.writeFile(
      script,
      `import json, docker
c = docker.from_env()
out = {}
out['docker_py'] = docker.__version__
out['ping'] = c.ping()
out['api'] = c.version()['ApiVersion']
out['run'] = c.containers.run('busybox', 'echo hi', remove=True).decode()
out['run_stream'] = [l.decode() for l in c.containers.run('busybox', ['sh', '-c', 'echo s1; echo s2'], stream=True, remove=True)]
ct = c.containers.run('busybox', ['sh', '-c', 'echo started; echo oops >&2; exec sleep 3600'], detach=True, name='pyc', labels={'t': 'py'})
r = ct.exec_run(['sh', '-c', 'echo out; exit 3'])
out['exec'] = [r.exit_code, r.output.decode()]
r = ct.exec_run('sh -c "echo $X; pwd; id -u"', environment={'X': 'y'}, workdir='/tmp', user='nobody')
out['exec_opts'] = [r.exit_code, r.output.decode()]
out['logs'] = ct.logs().decode()
out['stdout_only'] = ct.logs(stderr=False).decode()
ins = c.api.inspect_container('pyc')
out['inspect'] = [ins['Id'] == ct.id, ins['Name'], ins['State']['Running'], ins['Config']['Labels']]
out['listed'] = [x.name for x in c.containers.list(filters={'label': 't=py'})]
ct.stop(timeout=1)
ct.reload()
out['stopped'] = [ct.status, ct.attrs['State']['ExitCode']]
ct.remove()
out['left'] = [x.name for x in c.containers.list(all=True)]
n = c.networks.create('pynet', driver='bridge', labels={'t': 'py'})
ct2 = c.containers.run('busybox', 'sleep 30', detach=True, network='pynet', name='pyc2')
n.reload()
out['net'] = [n.name, n.attrs['Driver'], n.attrs['Labels'], [x.name for x in n.containers]]
ct2.remove(force=True)
n.remove()
out['nets'] = sorted(x.name for x in c.networks.list())
v = c.volumes.create('pyvol', labels={'t': 'py'})
out['vol'] = [v.name, c.volumes.get('pyvol').attrs['Driver']]
out['vol_run'] = c.containers.run('busybox', 'sh -c "echo x > /v/f && cat /v/f"', volumes={'pyvol': {'bind': '/v', 'mode': 'rw'}}, remove=True).decode()
v.remove()
out['vols'] = [x.name for x in c.volumes.list()]
out['images'] = sorted(t for i in c.images.list() for t in i.tags)
out['plugins'] = c.plugins.list()
try:
    c.containers.run('busybox', 'nonexistentcmd', name='pynf')
except docker.errors.APIError as e:
    out['start_error'] = [e.status_code, e.is_client_error(), 'executable file not found' in str(e)]
out['start_error_state'] = c.api.inspect_container('pynf')['State']['ExitCode']
c.api.remove_container('pynf')
try:
    c.containers.get('nope')
except docker.errors.NotFound:
    out['not_found'] = True
print(json.dumps(out))
`,
    );
    const r = await exec(PYTHON, [script], { env: d.env(), timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.match(String(out.docker_py), /^5\./, 'Debian bookworm python3-docker (5.0.3)');
    assert.equal(out.ping, true);
    assert.equal(out.api, '1.44');
    assert.equal(out.run, 'hi\n');
    // logs?follow=1 from right after the start (was racy: output written before the follow began was lost)
    assert.deepEqual(out.run_stream, ['s1\n', 's2\n']);
    assert.deepEqual(out.exec, [3, 'out\n']);
    assert.deepEqual(out.exec_opts, [0, 'y\n/tmp\n65534\n']);
    assert.equal(out.logs, 'started\noops\n');
    assert.equal(out.stdout_only, 'started\n');
    assert.deepEqual(out.inspect, [true, '/pyc', true, { t: 'py' }]);
    assert.deepEqual(out.listed, ['pyc']);
    assert.deepEqual(out.stopped, ['exited', 137]);
    assert.deepEqual(out.left, []);
    assert.deepEqual(out.net, ['pynet', 'bridge', { t: 'py' }, ['pyc2']]);
    assert.deepEqual(out.nets, ['bridge', 'host', 'none']);
    assert.deepEqual(out.vol, ['pyvol', 'local']);
    assert.equal(out.vol_run, 'x\n');
    assert.deepEqual(out.vols, []);
    assert.deepEqual(out.images, ['busybox:latest']);
    // GET /plugins: an empty list (was a 404)
    assert.deepEqual(out.plugins, []);
    // a command that cannot be found: 400 as Docker's start (was a 500), exit code 127
    assert.deepEqual(out.start_error, [400, true, true]);
    assert.equal(out.start_error_state, 127);
    assert.equal(out.not_found, true);
  });
});
