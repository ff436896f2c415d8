/**
 * Networks through the real docker CLI (and berth) against a real berthd:
 * the default bridge, user-defined networks with DNS and isolation, internal
 * networks, published TCP and UDP ports from the host and from containers,
 * connect/disconnect, container: mode, bad input, state across a daemon
 * restart, NAT rules restored after a flush, and nothing left behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TestDaemon, busyboxRootfsTar, eventually, exec, REPO, httpGet } from '../helpers/daemon.js';

function hostAddress(): string {
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    if (name === 'lo' || name.startsWith('bt') || name.startsWith('br-') || name.startsWith('veth')) continue;
    const a = (addrs ?? []).find((x) => x.family === 'IPv4' && !x.internal);
    if (a) return a.address;
  }
  throw new Error('no host address');
}

function udpAsk(port: number, host: string, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error('udp timeout'));
    }, 3000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m.toString());
    });
    s.send(message, port, host);
  });
}

describe('networks', () => {
  let d: TestDaemon;
  const host = hostAddress();
  before(async () => {
    d = await TestDaemon.start();
  });
  after(async () => {
    await d.cleanup();
  });

  const ok = (args: string[], input?: Buffer): Promise<string> => d.ok(args, input);
  const ipOf = async (name: string, net = 'bridge'): Promise<string> => ok(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, name]);

  test('the default bridge: addresses, /etc files, container to container by IP, no DNS', async () => {
    await ok(['run', '-d', '--name', 'b1', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc']);
    const ip = await ipOf('b1');
    assert.ok(ip.startsWith(d.bridgeSubnet.replace('.0/24', '.')), `${ip} in ${d.bridgeSubnet}`);
    const top = await ok(['inspect', '-f', '{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}}', 'b1']);
    assert.equal(top, `${ip} ${d.bip.split('/')[0]}`);
    const out = await ok(['run', '--rm', '--init', 'busybox', 'sh', '-c', `timeout 5 wget -qO- http://${ip}/hostname; cat /etc/hosts; ip route`]);
    assert.match(out, /^[a-f0-9]{12}$/m);
    assert.match(out, new RegExp(`default via ${d.bip.split('/')[0].replace(/\./g, '\\.')}`));
    const noDns = await d.docker(['run', '--rm', 'busybox', 'nslookup', 'b1']);
    assert.notEqual(noDns.code, 0, 'no name resolution on the default bridge');
    // --link gives a hosts entry, as Docker's legacy links do
    const linked = await ok(['run', '--rm', '--init', '--link', 'b1:web', 'busybox', 'sh', '-c', 'grep -w web /etc/hosts; timeout 5 wget -qO- http://web/hostname']);
    assert.match(linked, new RegExp(`${ip.replace(/\./g, '\\.')}\\s+web`));
    // host-gateway resolves to the bridge's gateway
    const gw = await ok(['run', '--rm', '--add-host', 'host.docker.internal:host-gateway', 'busybox', 'grep', 'host.docker.internal', '/etc/hosts']);
    assert.match(gw, new RegExp(`^${d.bip.split('/')[0].replace(/\./g, '\\.')}\\s`));
    await ok(['rm', '-f', 'b1']);
  });

  test('user-defined networks: names, aliases and short IDs resolve; other networks are isolated', async () => {
    await ok(['network', 'create', '--label', 'team=net', 'front']);
    await ok(['network', 'create', 'back']);
    const id = await ok(['run', '-d', '--name', 'srv', '--network', 'front', '--network-alias', 'api', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc']);
    const short = id.slice(0, 12);
    const out = await ok(['run', '--rm', '--init', '--network', 'front', 'busybox', 'sh', '-c', `timeout 5 wget -qO- http://srv/hostname; timeout 5 wget -qO- http://api/hostname; timeout 5 wget -qO- http://${short}/hostname`]);
    assert.deepEqual(out.split('\n'), [short, short, short]);
    const aliases = JSON.parse(await ok(['inspect', '-f', '{{json .NetworkSettings.Networks.front.Aliases}}', 'srv']));
    assert.ok(aliases.includes(short) && aliases.includes('api'), `aliases ${aliases}`);
    const frontIp = await ipOf('srv', 'front');
    const isolated = await d.docker(['run', '--rm', '--init', '--network', 'back', 'busybox', 'sh', '-c', `timeout 3 wget -qO- http://${frontIp}/hostname`]);
    assert.notEqual(isolated.code, 0, 'a container on another network cannot reach it');
    const fromDefault = await d.docker(['run', '--rm', '--init', 'busybox', 'sh', '-c', `timeout 3 wget -qO- http://${frontIp}/hostname`]);
    assert.notEqual(fromDefault.code, 0, 'nor can one on the default bridge');
    // netavark drops the shared isolation jump when another network goes away: isolation must hold
    // for containers already running (a new container's setup would put the jump back by itself)
    await ok(['run', '-d', '--init', '--name', 'prober', 'busybox', 'sleep', '300']);
    await ok(['network', 'create', 'shortlived']);
    await ok(['run', '--rm', '--network', 'shortlived', 'busybox', 'true']);
    await ok(['network', 'rm', 'shortlived']);
    const afterRemoval = await d.docker(['exec', 'prober', 'sh', '-c', `timeout 3 wget -qO- http://${frontIp}/hostname`]);
    assert.notEqual(afterRemoval.code, 0, 'still isolated after another network was removed');
    await ok(['rm', '-f', 'prober']);
    const net = JSON.parse(await ok(['network', 'inspect', 'front']))[0];
    assert.equal(net.Driver, 'bridge');
    assert.deepEqual(net.Labels, { team: 'net' });
    assert.deepEqual(net.Options, {}, 'only what the user set');
    assert.equal(net.IPAM.Config.length, 1);
    assert.ok(net.Containers[id], 'inspect lists the running container');
    const ls = await ok(['network', 'ls', '--filter', 'label=team=net', '--format', '{{.Name}}']);
    assert.equal(ls, 'front');
    const inUse = await d.docker(['network', 'rm', 'front']);
    assert.notEqual(inUse.code, 0);
    assert.match(inUse.stderr, /has active endpoints/);
    await ok(['rm', '-f', 'srv']);
    await ok(['network', 'rm', 'front', 'back']);
  });

  test('internal networks have no route out; static addresses and subnets', async () => {
    await ok(['network', 'create', '--internal', '--subnet', '10.233.77.0/24', '--gateway', '10.233.77.254', 'sealed']);
    const out = await ok(['run', '--rm', '--network', 'sealed', '--ip', '10.233.77.50', 'busybox', 'sh', '-c', 'ip -4 addr show eth0 | grep inet; ip route']);
    assert.match(out, /inet 10\.233\.77\.50\/24/);
    assert.doesNotMatch(out, /default via/);
    const out2 = await d.docker(['run', '--rm', '--init', '--network', 'sealed', 'busybox', 'sh', '-c', `timeout 3 wget -qO- http://${host}:1/`]);
    assert.notEqual(out2.code, 0);
    await ok(['network', 'rm', 'sealed']);
  });

  test('published TCP ports answer on 127.0.0.1, the host address and from other containers', async () => {
    await ok(['run', '-d', '--name', 'web', '-p', '8080', '-p', '127.0.0.1::8081', 'busybox', 'sh', '-c', 'echo hello-web > /tmp/index.html; httpd -p 8081 -h /tmp; httpd -f -p 8080 -h /tmp']);
    const ports = JSON.parse(await ok(['inspect', '-f', '{{json .NetworkSettings.Ports}}', 'web']));
    const hostPort = Number(ports['8080/tcp'][0].HostPort);
    assert.ok(hostPort > 0);
    assert.equal(ports['8080/tcp'][0].HostIp, '0.0.0.0');
    assert.equal(ports['8081/tcp'][0].HostIp, '127.0.0.1');
    await eventually(async () => (await httpGet(`http://127.0.0.1:${hostPort}/index.html`)) === 'hello-web\n', 10_000, 'port on 127.0.0.1');
    assert.equal(await httpGet(`http://localhost:${hostPort}/index.html`), 'hello-web\n');
    assert.equal(await httpGet(`http://${host}:${hostPort}/index.html`), 'hello-web\n');
    const local = Number(ports['8081/tcp'][0].HostPort);
    assert.equal(await httpGet(`http://127.0.0.1:${local}/index.html`), 'hello-web\n');
    const hairpin = await ok(['run', '--rm', '--init', 'busybox', 'sh', '-c', `timeout 5 wget -qO- http://${host}:${hostPort}/index.html`]);
    assert.equal(hairpin, 'hello-web');
    const port = await ok(['port', 'web', '8080']);
    assert.equal(port, `0.0.0.0:${hostPort}`);
    const psPorts = await ok(['ps', '--filter', 'name=web', '--format', '{{.Ports}}']);
    assert.match(psPorts, new RegExp(`0\\.0\\.0\\.0:${hostPort}->8080/tcp`));
    // a fixed port that is taken is refused, and nothing is left half made
    await ok(['run', '-d', '--name', 'fixed', '-p', '18999:8080', 'busybox', 'httpd', '-f', '-p', '8080']);
    const clash = await d.docker(['run', '-d', '--name', 'clash', '-p', '18999:8080', 'busybox', 'httpd', '-f', '-p', '8080']);
    assert.notEqual(clash.code, 0);
    assert.match(clash.stderr, /port is already allocated/);
    assert.equal(await ok(['inspect', '-f', '{{.State.Running}}', 'clash']), 'false');
    const rules = (await exec('iptables', ['-t', 'nat', '-S'])).stdout;
    const clashId = await ok(['inspect', '-f', '{{.Id}}', 'clash']);
    assert.ok(!rules.includes(clashId), 'no rules for the refused container');
    const berthPort = await d.berth(['port', 'fixed']);
    assert.equal(berthPort.stdout.trim(), '8080/tcp -> 0.0.0.0:18999');
    await ok(['rm', '-f', 'web', 'fixed', 'clash']);
  });

  test('published UDP ports', async () => {
    const dir = await fsp.mkdtemp('/tmp/udp-fixture-');
    try {
      const rootfs = path.join(dir, 'rootfs');
      await fsp.mkdir(rootfs);
      await exec('tar', ['-x', '-C', rootfs], { input: await busyboxRootfsTar() });
      const cc = await exec('gcc', ['-static', '-O2', '-o', path.join(rootfs, 'bin', 'udp-echo'), path.join(REPO, 'test/fixtures/udp-echo.c')]);
      assert.equal(cc.code, 0, cc.stderr);
      const tar = await exec('tar', ['-C', rootfs, '-cf', path.join(dir, 'img.tar'), '.']);
      assert.equal(tar.code, 0);
      assert.equal((await d.docker(['import', path.join(dir, 'img.tar'), 'udpecho'])).code, 0);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
    await ok(['run', '-d', '--name', 'udp', '-p', '5353/udp', 'udpecho', 'udp-echo', '5353']);
    const hostPort = Number(await ok(['inspect', '-f', '{{(index (index .NetworkSettings.Ports "5353/udp") 0).HostPort}}', 'udp']));
    assert.equal(await eventually(() => udpAsk(hostPort, '127.0.0.1', 'ping'), 10_000, 'udp reply'), 'echo:ping');
    assert.equal(await udpAsk(hostPort, host, 'pong'), 'echo:pong');
    await ok(['rm', '-f', 'udp']);
  });

  test('connect and disconnect, on created and running containers, with aliases', async () => {
    await ok(['network', 'create', 'mesh']);
    await ok(['run', '-d', '--name', 'peer', '--network', 'mesh', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc']);
    await ok(['create', '--name', 'late', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc']);
    await ok(['network', 'connect', '--alias', 'latecomer', 'mesh', 'late']);
    await ok(['start', 'late']);
    const nets = await ok(['inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}', 'late']);
    assert.deepEqual(nets.split(' ').sort(), ['bridge', 'mesh']);
    assert.match(await ok(['run', '--rm', '--init', '--network', 'mesh', 'busybox', 'sh', '-c', `timeout 5 wget -qO- http://latecomer/hostname`]), /^[a-f0-9]{12}$/);
    // running container: connect, reach it by name, disconnect, no longer reachable
    await ok(['run', '-d', '--name', 'runner', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc']);
    await ok(['network', 'connect', 'mesh', 'runner']);
    assert.match(await ok(['run', '--rm', '--init', '--network', 'mesh', 'busybox', 'sh', '-c', `timeout 5 wget -qO- http://runner/hostname`]), /^[a-f0-9]{12}$/);
    await ok(['network', 'disconnect', 'mesh', 'runner']);
    const gone = await d.docker(['run', '--rm', '--init', '--network', 'mesh', 'busybox', 'sh', '-c', `timeout 3 wget -qO- http://runner/hostname`]);
    assert.notEqual(gone.code, 0);
    const missing = await d.docker(['network', 'connect', 'nope', 'runner']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /network nope not found/);
    // container:<name> shares the namespace
    const shared = await ok(['run', '--rm', '--network', 'container:peer', 'busybox', 'sh', '-c', 'ip -4 addr show eth0 | grep -o "inet [0-9.]*"']);
    assert.equal(shared, `inet ${await ipOf('peer', 'mesh')}`);
    await ok(['rm', '-f', 'peer', 'late', 'runner']);
    await ok(['network', 'rm', 'mesh']);
  });

  test('bad input: invalid and overlapping subnets, predefined networks, missing networks', async () => {
    const badCidr = await d.docker(['network', 'create', '--subnet', '10.0.0.300/24', 'bad1']);
    assert.notEqual(badCidr.code, 0);
    assert.match(badCidr.stderr, /invalid/i);
    await ok(['network', 'create', '--subnet', '10.234.1.0/24', 'one']);
    const overlap = await d.docker(['network', 'create', '--subnet', '10.234.1.128/25', 'two']);
    assert.notEqual(overlap.code, 0);
    assert.match(overlap.stderr, /overlaps/);
    const dup = await d.docker(['network', 'create', 'one']);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /already exists/);
    const predefined = await d.docker(['network', 'rm', 'bridge']);
    assert.notEqual(predefined.code, 0);
    assert.match(predefined.stderr, /pre-defined network/);
    const noNet = await d.docker(['run', '--rm', '--network', 'nowhere', 'busybox', 'true']);
    assert.notEqual(noNet.code, 0);
    assert.match(noNet.stderr, /network nowhere not found/);
    const nets = await ok(['network', 'ls', '--format', '{{.Name}}']);
    assert.doesNotMatch(nets, /bad1|two/);
    await ok(['network', 'rm', 'one']);
  });

  test('published ports keep answering across a daemon restart, and come back after a NAT flush', async () => {
    await ok(['run', '-d', '--name', 'durable', '-p', '8080', 'busybox', 'sh', '-c', 'echo durable > /tmp/index.html; httpd -f -p 8080 -h /tmp']);
    const hostPort = Number(await ok(['port', 'durable', '8080']).then((s) => s.split(':').pop()));
    const ip = await ipOf('durable');
    await eventually(async () => (await httpGet(`http://127.0.0.1:${hostPort}/index.html`)) === 'durable\n', 10_000, 'port');
    await d.restartDaemon('SIGKILL');
    assert.equal(await httpGet(`http://127.0.0.1:${hostPort}/index.html`), 'durable\n');
    assert.equal(await ipOf('durable'), ip, 'the address survives the restart');
    // a new container does not get the same address
    const other = await ok(['run', '--rm', 'busybox', 'sh', '-c', 'ip -4 addr show eth0 | grep -o "inet [0-9.]*"']);
    assert.notEqual(other, `inet ${ip}`);
    // someone flushes the NAT table: berthd puts the rules back
    assert.equal((await exec('iptables', ['-t', 'nat', '-F'])).code, 0);
    await assert.rejects(httpGet(`http://127.0.0.1:${hostPort}/index.html`, 1000));
    await eventually(async () => (await httpGet(`http://127.0.0.1:${hostPort}/index.html`, 1000)) === 'durable\n', 20_000, 'rules restored');
    await ok(['rm', '-f', 'durable']);
  });

  test('through berth: network create/ls/inspect/rm and run on a user network', async () => {
    const create = await d.berth(['network', 'create', 'bnet']);
    assert.equal(create.code, 0, create.stderr);
    const ls = await d.berth(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']);
    assert.match(ls.stdout, /^bnet bridge$/m);
    const run = await d.berth(['run', '--rm', '--network', 'bnet', 'busybox', 'sh', '-c', 'ip -4 route | head -1']);
    assert.match(run.stdout, /default via/);
    const rm = await d.berth(['network', 'rm', 'bnet']);
    assert.equal(rm.code, 0, rm.stderr);
  });

  test("a bridge's MAC stays put while containers come and go (their ARP entries for the gateway stay right)", async () => {
    await ok(['network', 'create', 'macnet']);
    const bridge = `br-${(await ok(['network', 'inspect', '-f', '{{.Id}}', 'macnet'])).slice(0, 12)}`;
    const first = await ok(['run', '-d', '--network', 'macnet', 'busybox', 'sleep', '60']);
    const sys = (attr: string): string => fs.readFileSync(`/sys/class/net/${bridge}/${attr}`, 'utf8').trim();
    assert.equal(sys('addr_assign_type'), '3', 'the address is set, not inherited from a port');
    const mac = sys('address');
    // containers with every possible lowest MAC would change an unset bridge address
    for (const m of ['02:00:00:00:00:01', '00:00:00:00:00:02']) {
      const seen = await ok(['run', '--rm', '--network', 'macnet', '--mac-address', m, 'busybox', 'cat', '/sys/class/net/eth0/address']);
      assert.equal(seen, m, '--mac-address is the container MAC');
      assert.equal(sys('address'), mac);
    }
    // without --mac-address, Docker's MAC for the address (02:42 + the IPv4 bytes): a reused
    // address keeps its MAC, so the host's neighbour entry for it stays right
    const ip = await ok(['inspect', '-f', '{{.NetworkSettings.Networks.macnet.IPAddress}}', first]);
    const expected = ['02', '42', ...ip.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
    assert.equal(await ok(['inspect', '-f', '{{.NetworkSettings.Networks.macnet.MacAddress}}', first]), expected);
    const gw = await ok(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Gateway}}', 'macnet']);
    await ok(['exec', first, 'ping', '-c', '1', '-W', '2', gw]);
    await ok(['rm', '-f', first]);
    await ok(['network', 'rm', 'macnet']);
  });

  test('removing containers and networks leaves no interface, rule or namespace behind', async () => {
    await ok(['network', 'create', 'temp']);
    const id = await ok(['run', '-d', '--network', 'temp', '-p', '8080', 'busybox', 'sleep', '60']);
    const netId = await ok(['network', 'inspect', '-f', '{{.Id}}', 'temp']);
    const subnet = await ok(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', 'temp']);
    await ok(['rm', '-f', id]);
    await ok(['network', 'rm', 'temp']);
    await eventually(async () => {
      const rules = (await exec('iptables-save', [])).stdout;
      return !rules.includes(id) && !rules.includes(subnet);
    }, 10_000, 'rules gone');
    assert.ok(!fs.existsSync(`/sys/class/net/br-${netId.slice(0, 12)}`), 'bridge gone');
    // only the namespaces prepared ahead of time on the default bridge stay
    await eventually(async () => (await fsp.readdir(path.join(d.execRoot, 'netns'))).every((n) => n.startsWith('warm-')), 10_000, 'netns gone');
    const links = (await exec('ip', ['-o', 'link'])).stdout;
    assert.doesNotMatch(links, new RegExp(`br-${netId.slice(0, 12)}`));
  });
});
