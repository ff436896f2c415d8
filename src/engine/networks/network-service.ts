/**
 * NetworkService: Docker's networks (the default bridge, user-defined
 * bridges, host and none) and the network side of every container start.
 *
 * berthd owns the records (networks.json), address allocation and host
 * ports; netavark does the kernel work (veth, bridge, NAT, DNAT) and runs
 * aardvark-dns for name resolution on user-defined networks. netavark runs
 * in parallel with `runc create` on the start path; teardown happens after
 * the container is gone, in the background, serialised per network.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { EndpointSettings } from '../../api/types.js';
import type { ContainerRecord } from '../../core/containers/types.js';
import { conflict, errnoCode, forbidden, invalidArgument, notFound } from '../../core/errdefs/index.js';
import type { EventBus } from '../../core/events/bus.js';
import { Filters } from '../../core/filters.js';
import { AddressPool } from '../../core/networks/ipam.js';
import { type Subnet4, formatCidr, formatIPv4, overlaps, parseCidr, parseIPv4, split } from '../../core/networks/ipv4.js';
import { type IpamConfig, type NetworkRecord, PREDEFINED } from '../../core/networks/types.js';
import { readJsonFile, removeTempFiles, writeJsonAtomic } from '../../util/atomic-file.js';
import { newId, shortId } from '../../util/ids.js';
import type { Logger } from '../../util/log.js';
import { KeyedMutex, Mutex } from '../../util/mutex.js';
import { run } from '../../util/proc.js';
import { rfc3339Nano } from '../../util/time.js';
import type { ContainerNetworking, NetworkSetup } from '../containers/container-service.js';
import { MNT_DETACH, native } from '../runtime/native.js';
import { ensureBridge, linkExists, removeKeeper } from './bridge-link.js';
import { Netavark, type NetavarkNetwork, type NetavarkRequest } from './netavark.js';
import { type PortMapping, type PortRequest, PortAllocator } from './ports.js';

export interface NetworkServiceConfig {
  dataRoot: string;
  execRoot: string;
  /** Bridge interface of the default network. */
  bridgeName: string;
  /** Gateway/prefix of the default network ("172.30.0.1/16"), or automatic. */
  bip?: string;
  /** Where user-defined networks get their subnets: a pool split into /size. */
  addressPool: { base: string; size: number };
  netavarkBinary: string;
  aardvarkBinary?: string;
}

export interface CreateNetworkBody {
  Name?: string;
  CheckDuplicate?: boolean;
  Driver?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  EnableIPv6?: boolean;
  IPAM?: { Driver?: string; Config?: { Subnet?: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> }[]; Options?: Record<string, string> };
  Options?: Record<string, string>;
  Labels?: Record<string, string>;
  Scope?: string;
}

/** What a running container's network looks like, kept to undo it. */
interface SandboxState {
  netns: string;
  request: NetavarkRequest;
}

/** A network namespace on the default bridge set up before any container asked for it. */
interface WarmSandbox {
  /** Owner of its address in the pool until a container takes it. */
  id: string;
  ip: string;
  mac: string;
  state: SandboxState;
}

/** Warm sandboxes kept ready on the default bridge. */
const WARM_SANDBOXES = 2;

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const DEFAULT_BRIDGE_CANDIDATES = ['172.30.0.0/16', '172.31.0.0/16', '172.29.0.0/16', '10.222.0.0/16', '192.168.231.0/24'];

/** How long a stopped container's network cleanup waits before it starts. */
const TEARDOWN_DELAY_MS = 50;

export class NetworkService implements ContainerNetworking {
  private networks = new Map<string, NetworkRecord>();
  private readonly pools = new Map<string, AddressPool>();
  private readonly ports = new PortAllocator();
  private readonly netLocks = new KeyedMutex();
  private readonly docLock = new Mutex();
  private readonly sandboxes = new Map<string, SandboxState>();
  private readonly teardowns = new Map<string, Promise<void>>();
  private readonly bridgesReady = new Set<string>();
  private readonly netavark: Netavark;
  private readonly file: string;
  private readonly netnsDir: string;
  private timer: NodeJS.Timeout | undefined;
  /** Running containers, for flush detection (set by the composition root). */
  runningContainers: () => ContainerRecord[] = () => [];
  /** Lookup of containers by name or ID, for container:<x> network mode. */
  resolveContainer: (idOrName: string) => ContainerRecord | undefined = () => undefined;

  constructor(
    private readonly config: NetworkServiceConfig,
    private readonly events: EventBus,
    private readonly log: Logger,
  ) {
    this.file = path.join(config.dataRoot, 'networks', 'networks.json');
    this.netnsDir = path.join(config.execRoot, 'netns');
    this.netavark = new Netavark(config.netavarkBinary, path.join(config.execRoot, 'netavark'), config.aardvarkBinary);
  }

  // ---- startup -------------------------------------------------------------

  async init(containers: ContainerRecord[]): Promise<void> {
    await fsp.mkdir(path.dirname(this.file), { recursive: true });
    await removeTempFiles(path.dirname(this.file));
    await fsp.mkdir(this.netnsDir, { recursive: true, mode: 0o700 });
    await fsp.mkdir(this.netavark.configDir, { recursive: true, mode: 0o700 });
    const doc = await readJsonFile<{ networks: NetworkRecord[] }>(this.file);
    for (const n of doc?.networks ?? []) this.networks.set(n.id, n);
    await this.ensurePredefined();
    for (const n of this.networks.values()) this.buildPool(n);

    // Running containers keep their addresses and ports.
    for (const c of containers) {
      const state = await readJsonFile<SandboxState>(this.sandboxFile(c.id));
      if (!state) continue;
      if (c.state.Running) {
        this.sandboxes.set(c.id, state);
        this.claimFromRequest(c.id, state.request);
      } else {
        // died while we were down (or a crash mid-start): undo its network
        this.sandboxes.set(c.id, state);
        this.scheduleTeardown(c.id);
      }
    }
    // netns files nobody owns (warm sandboxes of an earlier run among them)
    const owned = new Set(containers.map((c) => c.id));
    for (const state of this.sandboxes.values()) owned.add(path.basename(state.netns));
    for (const name of await fsp.readdir(this.netnsDir)) {
      const id = name.replace(/\.json$/, '');
      if (!owned.has(id)) await this.dropNetns(path.join(this.netnsDir, id));
    }
    this.timer = setInterval(() => void this.checkFirewall(), 5000);
    this.timer.unref();
    void this.refillWarm();
  }

  shutdown(): void {
    if (this.timer) clearInterval(this.timer);
    this.stopping = true;
  }

  /** At daemon stop: an unused default bridge is removed, so nothing is left on the host. */
  async shutdownCleanup(): Promise<void> {
    await this.drainWarm();
    await Promise.allSettled([...this.teardowns.values()]);
    // containers that keep running without the daemon keep their isolation
    if (this.sandboxes.size === 0) await this.removeIsolationJump();
    const bridge = this.byName('bridge');
    if (bridge && (this.pools.get(bridge.id)?.usedCount() ?? 0) === 0) {
      await this.deleteBridge(bridge).catch((err) => this.log.warn('removing the default bridge failed', { error: err as Error }));
    }
  }

  private async ensurePredefined(): Promise<void> {
    const missing = PREDEFINED.filter((n) => !this.byName(n));
    const bridge = this.byName('bridge');
    if (bridge && bridge.bridge !== this.config.bridgeName) {
      bridge.bridge = this.config.bridgeName;
      if (this.config.bip) bridge.ipam.Config = [this.bipConfig(this.config.bip)];
      await this.persist();
    }
    if (missing.length === 0) return;
    for (const name of missing) {
      const rec: NetworkRecord = {
        id: newId(),
        name,
        driver: name === 'bridge' ? 'bridge' : name === 'host' ? 'host' : 'null',
        created: rfc3339Nano(),
        internal: false,
        attachable: false,
        dns: false,
        bridge: name === 'bridge' ? this.config.bridgeName : '',
        ipam: { Driver: 'default', Options: {}, Config: [] },
        options: {},
        labels: {},
        builtin: true,
      };
      if (name === 'bridge') {
        rec.ipam.Config = [this.config.bip ? this.bipConfig(this.config.bip) : await this.pickDefaultBridgeSubnet()];
        rec.options = {
          'com.docker.network.bridge.default_bridge': 'true',
          'com.docker.network.bridge.enable_icc': 'true',
          'com.docker.network.bridge.enable_ip_masquerade': 'true',
          'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
          'com.docker.network.bridge.name': this.config.bridgeName,
          'com.docker.network.driver.mtu': '1500',
        };
      }
      this.networks.set(rec.id, rec);
    }
    await this.persist();
  }

  private bipConfig(bip: string): IpamConfig {
    const net = parseCidr(bip, true);
    return { Subnet: formatCidr(net), Gateway: bip.split('/')[0] };
  }

  /**
   * Subnets in use on the host (addresses and routes), so ours do not
   * collide. `ip` rather than os.networkInterfaces(): libuv leaves out
   * interfaces without carrier, such as an idle bridge.
   */
  private async hostSubnets(): Promise<Subnet4[]> {
    const out: Subnet4[] = [];
    const addrs = await run('ip', ['-o', '-4', 'addr', 'show']).catch(() => undefined);
    for (const m of (addrs?.stdout ?? '').matchAll(/inet (\d+\.\d+\.\d+\.\d+\/\d+)/g)) {
      if (m[1].startsWith('127.')) continue;
      out.push(parseCidr(m[1], true));
    }
    try {
      const routes = (await fsp.readFile('/proc/net/route', 'utf8')).split('\n').slice(1);
      for (const line of routes) {
        const f = line.trim().split(/\s+/);
        if (f.length < 8 || f[1] === '00000000') continue;
        const dest = Buffer.from(f[1], 'hex').readUInt32LE(0);
        const mask = Buffer.from(f[7], 'hex').readUInt32LE(0);
        const prefix = mask.toString(2).split('1').length - 1;
        out.push({ base: dest >>> 0, prefix });
      }
    } catch {
      // no route table: addresses are enough
    }
    return out;
  }

  private async pickDefaultBridgeSubnet(): Promise<IpamConfig> {
    const taken = [...(await this.hostSubnets()), parseCidr('172.17.0.0/16'), ...this.allSubnets()];
    for (const c of DEFAULT_BRIDGE_CANDIDATES) {
      const s = parseCidr(c);
      if (!taken.some((t) => overlaps(t, s))) return { Subnet: c, Gateway: formatIPv4(s.base + 1) };
    }
    throw conflict('no free subnet for the default bridge: set one with --bip');
  }

  private allSubnets(): Subnet4[] {
    return [...this.networks.values()].flatMap((n) => n.ipam.Config.map((c) => parseCidr(c.Subnet)));
  }

  private buildPool(n: NetworkRecord): void {
    const cfg = n.ipam.Config[0];
    if (n.driver !== 'bridge' || !cfg) return;
    this.pools.set(n.id, new AddressPool(cfg.Subnet, cfg.Gateway, cfg.IPRange));
  }

  private async persist(): Promise<void> {
    await this.docLock.run(() => writeJsonAtomic(this.file, { networks: [...this.networks.values()] }));
  }

  // ---- lookup --------------------------------------------------------------

  private byName(name: string): NetworkRecord | undefined {
    for (const n of this.networks.values()) if (n.name === name) return n;
    return undefined;
  }

  tryResolve(input: string): NetworkRecord | undefined {
    if (input === 'default') input = 'bridge';
    const exact = this.networks.get(input) ?? this.byName(input);
    if (exact) return exact;
    if (/^[a-f0-9]+$/.test(input)) {
      const matches = [...this.networks.values()].filter((n) => n.id.startsWith(input));
      if (matches.length > 1) throw invalidArgument(`network ${input} is ambiguous (${matches.length} matches found based on ID prefix)`);
      return matches[0];
    }
    return undefined;
  }

  resolve(input: string): NetworkRecord {
    const n = this.tryResolve(input);
    if (!n) throw notFound(`network ${input} not found`);
    return n;
  }

  defaultGateway(): string | undefined {
    return this.byName('bridge')?.ipam.Config[0]?.Gateway;
  }

  // ---- the API -------------------------------------------------------------

  async create(body: CreateNetworkBody): Promise<{ Id: string; Warning: string }> {
    const name = body.Name ?? '';
    if (!name) throw invalidArgument('network name is required');
    if (!NAME_RE.test(name)) throw invalidArgument(`invalid network name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const driver = body.Driver || 'bridge';
    if (driver === 'host' || driver === 'null') throw forbidden(`only one instance of "${driver === 'null' ? 'none' : 'host'}" network is allowed`);
    if (driver !== 'bridge') throw notFound(`plugin "${driver}" not found`);
    if (body.EnableIPv6) throw invalidArgument('IPv6 networks are not supported by this daemon');
    if (body.Ingress) throw forbidden('ingress networks need swarm mode, which this daemon does not run');
    if (body.IPAM?.Driver && body.IPAM.Driver !== 'default') throw notFound(`IPAM driver "${body.IPAM.Driver}" not found`);
    const options = { ...(body.Options ?? {}) };
    const mtu = options['com.docker.network.driver.mtu'];
    if (mtu !== undefined && !/^\d+$/.test(mtu)) throw invalidArgument(`invalid mtu: ${mtu}`);
    const bridgeName = options['com.docker.network.bridge.name'];
    if (bridgeName !== undefined && !/^[a-zA-Z0-9_.-]{1,15}$/.test(bridgeName)) throw invalidArgument(`invalid bridge name: ${bridgeName}`);

    return this.docLock.run(async () => {
      if (this.byName(name)) throw conflict(`network with name ${name} already exists`);
      const configs: IpamConfig[] = [];
      const user = body.IPAM?.Config ?? [];
      if (user.length > 1) throw invalidArgument('only one IPv4 subnet per network is supported');
      const taken = [...this.allSubnets(), ...(await this.hostSubnets())];
      if (user.length === 1 && user[0].Subnet) {
        const u = user[0];
        const subnet = parseCidr(u.Subnet!);
        if (subnet.prefix > 30) throw invalidArgument(`subnet ${u.Subnet} is too small`);
        const clash = this.allSubnets().find((t) => overlaps(t, subnet));
        if (clash) throw forbidden(`Pool overlaps with other one on this address space (${formatCidr(clash)})`);
        const gateway = u.Gateway || formatIPv4(subnet.base + 1);
        const gw = parseIPv4(gateway);
        if (!((gw & (subnet.prefix ? (0xffffffff << (32 - subnet.prefix)) >>> 0 : 0)) >>> 0 === subnet.base)) {
          throw invalidArgument(`invalid gateway ${gateway}: not in subnet ${u.Subnet}`);
        }
        if (u.IPRange) {
          const r = parseCidr(u.IPRange);
          if (!overlaps(r, subnet) || r.prefix < subnet.prefix) throw invalidArgument(`invalid ip range ${u.IPRange}: not in subnet ${u.Subnet}`);
        }
        configs.push({ Subnet: formatCidr(subnet), Gateway: gateway, ...(u.IPRange ? { IPRange: u.IPRange } : {}), ...(u.AuxiliaryAddresses ? { AuxiliaryAddresses: u.AuxiliaryAddresses } : {}) });
      } else {
        if (user.length === 1 && (user[0].Gateway || user[0].IPRange)) throw invalidArgument('a gateway or ip range needs a subnet');
        const pool = parseCidr(this.config.addressPool.base);
        let chosen: Subnet4 | undefined;
        for (const s of split(pool, this.config.addressPool.size)) {
          if (!taken.some((t) => overlaps(t, s))) {
            chosen = s;
            break;
          }
        }
        if (!chosen) throw forbidden('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
        configs.push({ Subnet: formatCidr(chosen), Gateway: formatIPv4(chosen.base + 1) });
      }
      const id = newId();
      const rec: NetworkRecord = {
        id,
        name,
        driver: 'bridge',
        created: rfc3339Nano(),
        internal: body.Internal ?? false,
        attachable: body.Attachable ?? false,
        dns: true,
        bridge: bridgeName ?? `br-${id.slice(0, 12)}`,
        ipam: { Driver: 'default', Options: body.IPAM?.Options ?? {}, Config: configs },
        options,
        labels: body.Labels ?? {},
        builtin: false,
      };
      if ([...this.networks.values()].some((n) => n.bridge === rec.bridge)) throw conflict(`bridge ${rec.bridge} is used by another network`);
      this.networks.set(id, rec);
      this.buildPool(rec);
      await writeJsonAtomic(this.file, { networks: [...this.networks.values()] });
      this.events.publish('network', 'create', id, { name, type: 'bridge' });
      return { Id: id, Warning: '' };
    });
  }

  /** Containers attached to a network: by record, running or not. */
  private attached(n: NetworkRecord, containers: ContainerRecord[]): ContainerRecord[] {
    return containers.filter((c) => n.name in c.networkSettings.Networks || (n.name === 'bridge' && c.hostConfig.NetworkMode === 'default'));
  }

  async remove(input: string, containers: ContainerRecord[]): Promise<void> {
    const n = this.resolve(input);
    if (n.builtin) throw forbidden(`${n.name} is a pre-defined network and cannot be removed`);
    const users = this.attached(n, containers);
    if (users.length) throw conflict(`error while removing network: network ${n.name} id ${n.id} has active endpoints`);
    await this.netLocks.run(n.name, () => this.deleteBridge(n));
    await this.docLock.run(async () => {
      this.networks.delete(n.id);
      this.pools.delete(n.id);
      await writeJsonAtomic(this.file, { networks: [...this.networks.values()] });
    });
    this.events.publish('network', 'destroy', n.id, { name: n.name, type: 'bridge' });
  }

  /**
   * netavark removes a bridge and its rules only when the last container
   * leaves it. With the keeper gone, one throwaway attach/detach does that.
   */
  private async deleteBridge(n: NetworkRecord): Promise<void> {
    this.bridgesReady.delete(n.bridge);
    const cfg0 = n.ipam.Config[0];
    if (!linkExists(n.bridge)) {
      // the bridge may be gone while netavark's rules for its subnet are not
      const rules = await run('iptables', ['-S', 'NETAVARK_FORWARD']).catch(() => undefined);
      if (!cfg0 || !rules?.stdout.includes(cfg0.Subnet)) return;
    }
    await removeKeeper(n.bridge);
    const ns = path.join(this.netnsDir, `cleanup-${crypto.randomBytes(4).toString('hex')}`);
    await fsp.writeFile(ns, '');
    native().createNetns(ns);
    const cfg = n.ipam.Config[0];
    const base = parseCidr(cfg.Subnet).base;
    const scratch = parseIPv4(cfg.Gateway) === base + 2 ? base + 3 : base + 2;
    const req: NetavarkRequest = {
      container_id: newId(),
      container_name: 'berth-network-cleanup',
      port_mappings: [],
      networks: { [n.name]: { static_ips: [formatIPv4(scratch)], aliases: [], interface_name: 'eth0' } },
      network_info: { [n.name]: { ...this.netavarkNetwork(n), dns_enabled: false } },
    };
    try {
      await this.netavark.setup(ns, req);
      await this.netavark.teardown(ns, req);
    } finally {
      await this.dropNetns(ns);
    }
  }

  private readonly isolationLock = new Mutex();
  private isolationJumpInstalled = false;

  /** Our own jump into netavark's isolation chain: the comment makes it ours alone. */
  private isolationJump(): string[] {
    return ['FORWARD', '-m', 'comment', '--comment', `berth isolation ${this.config.bridgeName}`, '-j', 'NETAVARK_ISOLATION_1'];
  }

  /**
   * netavark (1.4) removes the shared `FORWARD -j NETAVARK_ISOLATION_1` jump
   * whenever one isolated network is torn down completely (by this daemon or
   * any other netavark user on the host), which silently ends the isolation
   * of every other network. This daemon keeps a jump of its own, which
   * netavark never removes; it is checked with the NAT rules and removed at
   * shutdown when no container is left on a network.
   */
  async ensureIsolationJump(): Promise<void> {
    await this.isolationLock.run(async () => {
      if (this.sandboxes.size === 0 && !this.isolationJumpInstalled) return;
      const check = await run('iptables', ['-C', ...this.isolationJump()]).catch(() => undefined);
      if (!check || check.code === 0) {
        this.isolationJumpInstalled = check?.code === 0;
        return;
      }
      const chain = await run('iptables', ['-S', 'NETAVARK_ISOLATION_1']).catch(() => undefined);
      if (!chain || chain.code !== 0) return; // netavark has not made its chains yet
      const [table, ...rule] = this.isolationJump();
      const r = await run('iptables', ['-I', table, '1', ...rule]).catch(() => undefined);
      if (r?.code === 0) {
        if (this.isolationJumpInstalled) this.log.warn('restored the network isolation jump that someone removed');
        this.isolationJumpInstalled = true;
      }
    });
  }

  private async removeIsolationJump(): Promise<void> {
    await this.isolationLock.run(async () => {
      for (let i = 0; i < 8; i++) {
        const r = await run('iptables', ['-D', ...this.isolationJump()]).catch(() => undefined);
        if (!r || r.code !== 0) break;
      }
      this.isolationJumpInstalled = false;
    });
  }

  async prune(filters: Filters, containers: ContainerRecord[]): Promise<{ NetworksDeleted: string[] | null }> {
    let until: number | undefined;
    if (filters.has('until')) {
      const v = filters.get('until')[0];
      until = /^\d+(\.\d+)?$/.test(v) ? Number(v) * 1000 : Date.parse(v);
    }
    const deleted: string[] = [];
    for (const n of [...this.networks.values()]) {
      if (n.builtin || this.attached(n, containers).length) continue;
      if (!filters.matchLabels(n.labels)) continue;
      if (until !== undefined && Date.parse(n.created) >= until) continue;
      await this.remove(n.id, containers);
      deleted.push(n.name);
    }
    return { NetworksDeleted: deleted.length ? deleted : null };
  }

  list(filters: Filters, containers: ContainerRecord[]): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const n of this.networks.values()) {
      if (!filters.matchAny('name', (v) => n.name.includes(v))) continue;
      if (!filters.matchAny('id', (v) => n.id.startsWith(v))) continue;
      if (!filters.matchAny('driver', (v) => v === n.driver)) continue;
      if (!filters.matchAny('scope', (v) => v === 'local')) continue;
      if (!filters.matchAny('type', (v) => (v === 'builtin' ? n.builtin : v === 'custom' ? !n.builtin : false))) continue;
      if (!filters.matchLabels(n.labels)) continue;
      const dangling = filters.bool('dangling');
      if (dangling !== undefined) {
        const unused = !n.builtin && this.attached(n, containers).length === 0;
        if (dangling !== unused) continue;
      }
      out.push(this.view(n, [], false));
    }
    return out.sort((a, b) => String(a.Name).localeCompare(String(b.Name)));
  }

  inspect(input: string, containers: ContainerRecord[]): Record<string, unknown> {
    const n = this.resolve(input);
    return this.view(n, this.attached(n, containers), true);
  }

  private view(n: NetworkRecord, containers: ContainerRecord[], withContainers: boolean): Record<string, unknown> {
    const members: Record<string, unknown> = {};
    for (const c of containers) {
      const ep = c.networkSettings.Networks[n.name];
      if (!ep || !c.state.Running) continue;
      members[c.id] = {
        Name: c.name,
        EndpointID: ep.EndpointID ?? '',
        MacAddress: ep.MacAddress ?? '',
        IPv4Address: ep.IPAddress ? `${ep.IPAddress}/${ep.IPPrefixLen}` : '',
        IPv6Address: '',
      };
    }
    return {
      Name: n.name,
      Id: n.id,
      Created: n.created,
      Scope: 'local',
      Driver: n.driver,
      EnableIPv6: false,
      IPAM: { Driver: n.ipam.Driver, Options: n.ipam.Options, Config: n.ipam.Config },
      Internal: n.internal,
      Attachable: n.attachable,
      Ingress: false,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Containers: withContainers ? members : {},
      Options: n.options,
      Labels: n.labels,
    };
  }

  // ---- the container side ------------------------------------------------

  private isBridgeMode(c: ContainerRecord): boolean {
    const mode = c.hostConfig.NetworkMode;
    return mode !== 'host' && mode !== 'none' && !mode.startsWith('container:');
  }

  /** At create: check the mode and record the endpoints the container asked for. */
  async prepare(c: ContainerRecord, endpoints: Record<string, EndpointSettings> = {}): Promise<void> {
    const mode = c.hostConfig.NetworkMode;
    if (mode === 'host' || mode === 'none') return;
    if (mode.startsWith('container:')) {
      const other = this.resolveContainer(mode.slice('container:'.length));
      if (!other) throw notFound(`No such container: ${mode.slice('container:'.length)}`);
      if (other.id === c.id) throw invalidArgument('cannot join own network namespace');
      c.hostConfig.NetworkMode = `container:${other.id}`;
      if (Object.keys(c.hostConfig.PortBindings ?? {}).length || c.hostConfig.PublishAllPorts) {
        throw invalidArgument('conflicting options: port publishing and the container type network mode');
      }
      return;
    }
    // a 404 here would make the docker CLI try to pull the image
    const lookup = (name: string): NetworkRecord => {
      const n = this.tryResolve(name);
      if (!n) throw invalidArgument(`network ${name} not found`);
      return n;
    };
    const primary = lookup(mode === 'default' ? 'bridge' : mode);
    if (primary.driver !== 'bridge') throw invalidArgument(`network ${primary.name} cannot be used as a bridge network`);
    const wanted: [NetworkRecord, EndpointSettings][] = [[primary, endpoints[mode] ?? endpoints[primary.name] ?? endpoints[primary.id] ?? {}]];
    for (const [key, ep] of Object.entries(endpoints)) {
      const n = lookup(key);
      if (n.id === primary.id) continue;
      if (n.driver !== 'bridge') throw invalidArgument(`container cannot be connected to network ${n.name} and a bridge network`);
      wanted.push([n, ep]);
    }
    for (const [n, ep] of wanted) c.networkSettings.Networks[n.name] = this.endpointRecord(c, n, ep);
    // API 1.44 moved --mac-address into the endpoint; the container's config keeps it as well
    // (older clients read it there, and it outlives the endpoint's run-time fields)
    const primaryMac = c.networkSettings.Networks[primary.name].MacAddress;
    if (primaryMac && !c.config.MacAddress) c.config.MacAddress = primaryMac;
    if (c.config.MacAddress) checkMac(c.config.MacAddress);
  }

  endpointRecord(c: ContainerRecord, n: NetworkRecord, ep: EndpointSettings): EndpointSettings {
    const ipv4 = ep.IPAMConfig?.IPv4Address;
    if (ipv4) {
      if (n.builtin) throw invalidArgument('user specified IP address is supported on user defined networks only');
      const pool = this.pools.get(n.id);
      if (pool && !pool.has(ipv4)) throw invalidArgument(`no configured subnet or ip-range contain the IP address ${ipv4}`);
    }
    const aliases = [...(ep.Aliases ?? [])];
    if (!n.builtin && !aliases.includes(c.id.slice(0, 12))) aliases.unshift(c.id.slice(0, 12));
    return {
      IPAMConfig: ipv4 ? { IPv4Address: ipv4 } : null,
      Links: ep.Links ?? null,
      Aliases: n.builtin ? null : aliases,
      MacAddress: ep.MacAddress ? checkMac(ep.MacAddress) : '',
      NetworkID: n.id,
      EndpointID: '',
      Gateway: '',
      IPAddress: '',
      IPPrefixLen: 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      DriverOpts: ep.DriverOpts ?? null,
      DNSNames: n.builtin ? null : [c.name, ...aliases.filter((a) => a !== c.name)],
    };
  }

  private gatewayOf(n: NetworkRecord): { address: string; prefix: number } {
    const cfg = n.ipam.Config[0];
    return { address: cfg.Gateway, prefix: parseCidr(cfg.Subnet).prefix };
  }

  private netavarkNetwork(n: NetworkRecord): NetavarkNetwork {
    const cfg = n.ipam.Config[0];
    const options: Record<string, string> = { isolate: 'true' };
    const mtu = n.options['com.docker.network.driver.mtu'];
    if (mtu && mtu !== '1500') options.mtu = mtu;
    return {
      name: n.name,
      id: n.id,
      driver: 'bridge',
      network_interface: n.bridge,
      subnets: [{ subnet: cfg.Subnet, gateway: cfg.Gateway }],
      ipv6_enabled: false,
      internal: n.internal,
      dns_enabled: n.dns && Boolean(this.config.aardvarkBinary),
      options,
    };
  }

  private sandboxFile(id: string): string {
    return path.join(this.netnsDir, `${id}.json`);
  }

  private portRequests(c: ContainerRecord): PortRequest[] {
    const out: PortRequest[] = [];
    const bindings = c.hostConfig.PortBindings ?? {};
    const keys = new Set(Object.keys(bindings));
    if (c.hostConfig.PublishAllPorts) for (const k of Object.keys(c.config.ExposedPorts ?? {})) keys.add(k);
    for (const key of keys) {
      const [portText, proto = 'tcp'] = key.split('/');
      const containerPort = Number(portText);
      if (!Number.isInteger(containerPort) || containerPort < 1 || containerPort > 65535) throw invalidArgument(`invalid port specification: "${key}"`);
      if (!['tcp', 'udp', 'sctp'].includes(proto)) throw invalidArgument(`invalid proto: ${proto}`);
      const list = bindings[key]?.length ? bindings[key]! : [{ HostIp: '', HostPort: '' }];
      for (const b of list) {
        if (b.HostIp && !/^\d+\.\d+\.\d+\.\d+$/.test(b.HostIp)) {
          if (b.HostIp.includes(':')) continue; // IPv6 host addresses: not supported, skip like an unsupported family
          throw invalidArgument(`invalid host IP: ${b.HostIp}`);
        }
        out.push({ containerPort, protocol: proto as PortRequest['protocol'], hostIp: b.HostIp === '0.0.0.0' ? '' : (b.HostIp ?? ''), hostPort: b.HostPort ?? '' });
      }
    }
    return out;
  }

  /** NetworkSettings.Ports as Docker shows it: bound ports, and exposed ones as null. */
  private portsView(c: ContainerRecord, mappings: PortMapping[]): Record<string, { HostIp: string; HostPort: string }[] | null> {
    const out: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
    for (const k of Object.keys(c.config.ExposedPorts ?? {})) out[k] = null;
    for (const m of mappings) {
      const key = `${m.containerPort}/${m.protocol}`;
      (out[key] ??= []).push({ HostIp: m.hostIp || '0.0.0.0', HostPort: String(m.hostPort) });
    }
    return out;
  }

  async setup(c: ContainerRecord): Promise<NetworkSetup> {
    const mode = c.hostConfig.NetworkMode;
    if (mode === 'host') return { namespace: 'host', kind: 'host', addresses: [], hostGateway: this.defaultGateway() };
    if (mode === 'none') return { namespace: 'new', kind: 'none', addresses: [] };
    if (mode.startsWith('container:')) {
      const other = this.resolveContainer(mode.slice('container:'.length));
      if (!other || !other.state.Running) throw conflict(`cannot join network of a non running container: ${mode.slice('container:'.length)}`);
      const sandbox = this.sandboxes.get(other.id);
      const nsPath = sandbox?.netns ?? `/proc/${other.state.Pid}/ns/net`;
      const kind = other.hostConfig.NetworkMode === 'host' ? 'host' : 'bridge';
      if (kind === 'host') return { namespace: 'host', kind: 'host', addresses: [] };
      return { namespace: { path: nsPath }, kind: 'container', addresses: [], shareEtcFrom: other.id };
    }

    await this.teardowns.get(c.id);
    const nets = Object.keys(c.networkSettings.Networks).map((name) => this.resolve(name));
    if (nets.length === 0) nets.push(this.resolve('bridge'));
    const warm = await this.takeWarm(c, nets);
    if (warm) return warm;
    const owner = c.id;
    const request: NetavarkRequest = {
      container_id: c.id,
      container_name: c.name,
      port_mappings: [],
      networks: {},
      network_info: {},
    };
    const addresses: string[] = [];
    let dnsServer: string | undefined;
    try {
      nets.forEach((n, i) => {
        const ep = c.networkSettings.Networks[n.name] ?? (c.networkSettings.Networks[n.name] = this.endpointRecord(c, n, {}));
        const pool = this.pools.get(n.id)!;
        let ip = ep.IPAMConfig?.IPv4Address;
        if (ip) pool.claim(ip, owner);
        else ip = pool.allocate(owner);
        addresses.push(ip);
        const cfg = n.ipam.Config[0];
        ep.IPAddress = ip;
        ep.IPPrefixLen = pool.prefix;
        ep.Gateway = n.internal ? '' : cfg.Gateway;
        ep.EndpointID = crypto.randomBytes(32).toString('hex');
        ep.NetworkID = n.id;
        request.networks[n.name] = {
          static_ips: [ip],
          aliases: n.dns ? [...new Set([...(ep.Aliases ?? [])])] : [],
          interface_name: `eth${i}`,
          static_mac: ep.MacAddress || (i === 0 && c.config.MacAddress) || macForAddress(ip),
        };
        request.network_info[n.name] = this.netavarkNetwork(n);
        if (!dnsServer && n.dns && this.config.aardvarkBinary) dnsServer = cfg.Gateway;
      });
      const mappings = await this.ports.allocate(owner, this.portRequests(c));
      request.port_mappings = mappings.map((m) => ({ host_ip: m.hostIp, container_port: m.containerPort, host_port: m.hostPort, range: 1, protocol: m.protocol }));
      c.networkSettings.Ports = this.portsView(c, mappings);
    } catch (err) {
      for (const n of nets) this.pools.get(n.id)?.release(owner);
      this.ports.release(owner);
      throw err;
    }

    const netns = path.join(this.netnsDir, c.id);
    await this.dropNetns(netns);
    await fsp.writeFile(netns, '');
    native().createNetns(netns);
    c.networkSettings.SandboxKey = netns;
    const state: SandboxState = { netns, request };
    this.sandboxes.set(c.id, state);
    await writeJsonAtomic(this.sandboxFile(c.id), state);
    for (const n of nets) this.events.publish('network', 'connect', n.id, { container: c.id, name: n.name, type: 'bridge' });

    // The kernel work runs while runc creates the container.
    for (const n of nets) this.pendingSetups.set(n.name, (this.pendingSetups.get(n.name) ?? 0) + 1);
    const ready = this.withNetworkLocks(nets.map((n) => n.name), async () => {
      for (const n of nets) {
        if (!this.bridgesReady.has(n.bridge) || !linkExists(n.bridge)) {
          const mtu = Number(n.options['com.docker.network.driver.mtu'] ?? 0) || undefined;
          await ensureBridge(n.bridge, this.gatewayOf(n), mtu);
          this.bridgesReady.add(n.bridge);
        }
      }
      const t0 = performance.now();
      const status = await this.netavark.setup(netns, request);
      this.log.debug('netavark setup', { id: shortId(c.id), ms: Math.round(performance.now() - t0) });
      if (!this.isolationJumpInstalled) void this.ensureIsolationJump();
      for (const n of nets) {
        const ifname = request.networks[n.name].interface_name;
        const mac = status[n.name]?.interfaces?.[ifname]?.mac_address;
        if (mac) c.networkSettings.Networks[n.name].MacAddress = mac;
      }
    });
    ready.catch(() => {}); // awaited by the caller; never unhandled
    void ready
      .catch(() => {})
      .finally(() => {
        for (const n of nets) this.pendingSetups.set(n.name, (this.pendingSetups.get(n.name) ?? 1) - 1);
        if ([...this.pendingSetups.values()].every((v) => v <= 0)) for (const wake of this.setupWaiters.splice(0)) wake();
      });
    return {
      namespace: { path: netns },
      kind: 'bridge',
      addresses,
      hostGateway: this.defaultGateway(),
      dnsServers: dnsServer ? [dnsServer] : undefined,
      ready,
    };
  }

  // ---- warm sandboxes ------------------------------------------------------

  private readonly warm: WarmSandbox[] = [];
  private warmFilling: Promise<void> | undefined;
  private stopping = false;

  /**
   * netavark takes ~60 ms per setup here (two dozen iptables calls, each a
   * process), longer than runc takes to create the container. For the
   * common case — the default bridge, no published ports, no fixed address —
   * a network namespace set up ahead of time is handed over instead, and
   * another is prepared in the background.
   */
  private async takeWarm(c: ContainerRecord, nets: NetworkRecord[]): Promise<NetworkSetup | undefined> {
    const n = nets[0];
    if (nets.length !== 1 || n.name !== 'bridge' || n.dns || this.portRequests(c).length) return undefined;
    const existing = c.networkSettings.Networks[n.name];
    if (existing?.IPAMConfig?.IPv4Address || existing?.MacAddress || c.config.MacAddress) return undefined;
    const w = this.warm.shift();
    if (!w) {
      this.log.debug('no warm network namespace ready');
      void this.refillWarm();
      return undefined;
    }
    const pool = this.pools.get(n.id)!;
    pool.release(w.id);
    pool.claim(w.ip, c.id);
    const ep = existing ?? (c.networkSettings.Networks[n.name] = this.endpointRecord(c, n, {}));
    ep.IPAddress = w.ip;
    ep.IPPrefixLen = pool.prefix;
    ep.Gateway = n.internal ? '' : n.ipam.Config[0].Gateway;
    ep.EndpointID = crypto.randomBytes(32).toString('hex');
    ep.NetworkID = n.id;
    ep.MacAddress = w.mac;
    c.networkSettings.Ports = this.portsView(c, []);
    c.networkSettings.SandboxKey = w.state.netns;
    this.sandboxes.set(c.id, w.state);
    // the record of the hand-over is written while runc creates the container
    const ready = writeJsonAtomic(this.sandboxFile(c.id), w.state);
    ready.catch(() => {}); // awaited by the caller; never unhandled
    this.events.publish('network', 'connect', n.id, { container: c.id, name: n.name, type: 'bridge' });
    void this.refillWarm();
    return { namespace: { path: w.state.netns }, kind: 'bridge', addresses: [w.ip], hostGateway: this.defaultGateway(), ready };
  }

  /** Prepares warm sandboxes on the default bridge until there are WARM_SANDBOXES (background work). */
  private refillWarm(): Promise<void> {
    this.warmFilling ??= this.fillWarm().finally(() => {
      this.warmFilling = undefined;
    });
    return this.warmFilling;
  }

  private async fillWarm(): Promise<void> {
    const n = this.byName('bridge');
    if (!n) return;
    while (this.warm.length < WARM_SANDBOXES && !this.stopping) {
      await this.setupsSettled([n.name]);
      if (this.stopping) return;
      const id = `warm-${crypto.randomBytes(8).toString('hex')}`;
      const pool = this.pools.get(n.id)!;
      let ip: string;
      try {
        ip = pool.allocate(id);
      } catch {
        return; // the network is full: containers get the addresses
      }
      const netns = path.join(this.netnsDir, id);
      const request: NetavarkRequest = {
        container_id: newId(),
        container_name: id,
        port_mappings: [],
        networks: { [n.name]: { static_ips: [ip], aliases: [], interface_name: 'eth0', static_mac: macForAddress(ip) } },
        network_info: { [n.name]: this.netavarkNetwork(n) },
      };
      try {
        await fsp.writeFile(netns, '');
        native().createNetns(netns);
        const status = await this.withNetworkLocks([n.name], async () => {
          if (!this.bridgesReady.has(n.bridge) || !linkExists(n.bridge)) {
            await ensureBridge(n.bridge, this.gatewayOf(n));
            this.bridgesReady.add(n.bridge);
          }
          return this.netavark.setup(netns, request);
        });
        if (!this.isolationJumpInstalled) void this.ensureIsolationJump();
        this.warm.push({ id, ip, mac: status[n.name]?.interfaces?.eth0?.mac_address ?? '', state: { netns, request } });
        this.log.debug('warm network namespace ready', { ready: this.warm.length });
      } catch (err) {
        pool.release(id);
        await this.dropNetns(netns);
        this.log.warn('preparing a network namespace ahead of time failed', { error: err as Error });
        return;
      }
    }
  }

  /** At shutdown: warm sandboxes are undone, so the host is left as it was. */
  private async drainWarm(): Promise<void> {
    this.stopping = true;
    await this.warmFilling;
    for (const w of this.warm.splice(0)) {
      await this.withNetworkLocks(Object.keys(w.state.request.networks), () => this.netavark.teardown(w.state.netns, w.state.request)).catch(() => {});
      await this.dropNetns(w.state.netns);
      const n = this.byName('bridge');
      if (n) this.pools.get(n.id)?.release(w.id);
    }
  }

  /** Setups in flight per network: background teardowns let them go first. */
  private readonly pendingSetups = new Map<string, number>();
  private setupWaiters: (() => void)[] = [];

  /**
   * A teardown is background work: it starts a moment after the exit and
   * waits while starts are setting up the same networks, so back-to-back
   * `docker run`s do not queue behind the previous one's cleanup.
   */
  private async setupsSettled(names: string[]): Promise<void> {
    await new Promise((r) => setTimeout(r, TEARDOWN_DELAY_MS));
    while (names.some((n) => (this.pendingSetups.get(n) ?? 0) > 0)) {
      await new Promise<void>((resolve) => {
        this.setupWaiters.push(resolve);
        setTimeout(resolve, 1000); // never wait on a setup that hangs
      });
    }
  }

  private async withNetworkLocks<T>(names: string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(names)].sort();
    const runNested = (i: number): Promise<T> => (i === sorted.length ? fn() : this.netLocks.run(sorted[i], () => runNested(i + 1)));
    return runNested(0);
  }

  /** Releases addresses and ports now; the kernel work is undone in the background. */
  async teardown(c: ContainerRecord): Promise<void> {
    if (!this.isBridgeMode(c)) return;
    for (const name of Object.keys(c.networkSettings.Networks)) {
      const n = this.tryResolve(name);
      if (n) this.pools.get(n.id)?.release(c.id);
      if (n && this.sandboxes.has(c.id)) this.events.publish('network', 'disconnect', n.id, { container: c.id, name: n.name, type: 'bridge' });
      const ep = c.networkSettings.Networks[name];
      ep.IPAddress = '';
      ep.IPPrefixLen = 0;
      ep.Gateway = '';
      ep.MacAddress = '';
      ep.EndpointID = '';
    }
    c.networkSettings.Ports = {};
    c.networkSettings.SandboxKey = '';
    this.scheduleTeardown(c.id);
  }

  private scheduleTeardown(id: string): void {
    const state = this.sandboxes.get(id);
    this.ports.release(id);
    if (!state) return;
    this.sandboxes.delete(id);
    const previous = this.teardowns.get(id) ?? Promise.resolve();
    const names = Object.keys(state.request.networks);
    const job = previous
      .then(() => this.setupsSettled(names))
      .then(() =>
        this.withNetworkLocks(names, async () => {
          await this.netavark.teardown(state.netns, state.request).catch((err) => {
            this.log.warn('netavark teardown failed', { id: shortId(id), error: err as Error });
          });
        }),
      )
      .then(async () => {
        await this.dropNetns(state.netns);
        await fsp.rm(this.sandboxFile(id), { force: true });
        for (const n of Object.keys(state.request.networks)) {
          const rec = this.tryResolve(n);
          if (rec) this.pools.get(rec.id)?.release(id);
        }
      })
      .finally(() => {
        if (this.teardowns.get(id) === job) this.teardowns.delete(id);
      });
    this.teardowns.set(id, job);
  }

  /** Waits for every pending teardown (tests, shutdown). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.teardowns.values()]);
  }

  private claimFromRequest(owner: string, req: NetavarkRequest): void {
    for (const [name, ep] of Object.entries(req.networks)) {
      const n = this.tryResolve(name);
      if (!n) continue;
      for (const ip of ep.static_ips) {
        try {
          this.pools.get(n.id)?.claim(ip, owner);
        } catch (err) {
          this.log.warn('could not restore address', { ip, error: err as Error });
        }
      }
    }
    this.ports.claim(
      owner,
      req.port_mappings.map((p) => ({ hostIp: p.host_ip, hostPort: p.host_port, containerPort: p.container_port, protocol: p.protocol as PortMapping['protocol'] })),
    );
  }

  private async dropNetns(p: string): Promise<void> {
    try {
      native().umount2(p, MNT_DETACH);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'EINVAL' && code !== 'ENOENT') this.log.warn('unmounting netns failed', { path: p, error: err as Error });
    }
    await fsp.rm(p, { force: true }).catch(() => {});
  }

  // ---- connect / disconnect on a running container -----------------------

  async attachRunning(c: ContainerRecord, n: NetworkRecord): Promise<void> {
    const state = this.sandboxes.get(c.id);
    if (!state) throw conflict(`container ${shortId(c.id)} has no network namespace of its own to connect`);
    const ep = c.networkSettings.Networks[n.name];
    const pool = this.pools.get(n.id)!;
    const ip = ep.IPAMConfig?.IPv4Address ?? pool.allocate(c.id);
    if (ep.IPAMConfig?.IPv4Address) pool.claim(ip, c.id);
    const used = new Set(Object.values(state.request.networks).map((x) => x.interface_name));
    let i = 0;
    while (used.has(`eth${i}`)) i++;
    const single: NetavarkRequest = {
      container_id: c.id,
      container_name: c.name,
      port_mappings: [],
      networks: { [n.name]: { static_ips: [ip], aliases: n.dns ? ep.Aliases ?? [] : [], interface_name: `eth${i}`, static_mac: ep.MacAddress || macForAddress(ip) } },
      network_info: { [n.name]: this.netavarkNetwork(n) },
    };
    try {
      const status = await this.netLocks.run(n.name, async () => {
        if (!linkExists(n.bridge)) await ensureBridge(n.bridge, this.gatewayOf(n));
        this.bridgesReady.add(n.bridge);
        return this.netavark.setup(state.netns, single);
      });
      ep.MacAddress = status[n.name]?.interfaces?.[`eth${i}`]?.mac_address ?? '';
    } catch (err) {
      pool.release(c.id);
      throw err;
    }
    ep.IPAddress = ip;
    ep.IPPrefixLen = pool.prefix;
    ep.Gateway = n.internal ? '' : n.ipam.Config[0].Gateway;
    ep.EndpointID = crypto.randomBytes(32).toString('hex');
    state.request.networks[n.name] = single.networks[n.name];
    state.request.network_info[n.name] = single.network_info[n.name];
    await writeJsonAtomic(this.sandboxFile(c.id), state);
  }

  async detachRunning(c: ContainerRecord, n: NetworkRecord): Promise<void> {
    const state = this.sandboxes.get(c.id);
    if (!state || !state.request.networks[n.name]) return;
    const single: NetavarkRequest = {
      container_id: c.id,
      container_name: c.name,
      // port forwarding rules go with the network they were set up on
      port_mappings: state.request.port_mappings,
      networks: { [n.name]: state.request.networks[n.name] },
      network_info: { [n.name]: state.request.network_info[n.name] },
    };
    await this.netLocks.run(n.name, () => this.netavark.teardown(state.netns, single));
    delete state.request.networks[n.name];
    delete state.request.network_info[n.name];
    this.pools.get(n.id)?.release(c.id);
    await writeJsonAtomic(this.sandboxFile(c.id), state);
  }

  // ---- firewall watch ------------------------------------------------------

  /**
   * Someone flushing the NAT table (iptables -t nat -F) removes every port
   * forward; Docker needs a restart to notice. We check the rules of running
   * containers with published ports every few seconds and put them back.
   */
  async checkFirewall(): Promise<void> {
    await this.ensureIsolationJump();
    const withPorts = [...this.sandboxes.entries()].filter(([, s]) => s.request.port_mappings.length > 0);
    if (withPorts.length === 0) return;
    const r = await run('iptables', ['-t', 'nat', '-S']).catch(() => undefined);
    if (!r || r.code !== 0) return;
    const hasJump = /-A PREROUTING .*-j NETAVARK-HOSTPORT-DNAT/.test(r.stdout);
    for (const [id, state] of withPorts) {
      if (hasJump && r.stdout.includes(`id: ${id}`)) continue;
      this.log.warn('port forwarding rules are gone; restoring them', { id: shortId(id) });
      await this.withNetworkLocks(Object.keys(state.request.networks), async () => {
        await this.netavark.teardown(state.netns, state.request).catch(() => {});
        await this.netavark.setup(state.netns, state.request);
      }).catch((err) => this.log.error('restoring port forwarding failed', { id: shortId(id), error: err as Error }));
    }
  }

  exists(): boolean {
    return fs.existsSync(this.file);
  }
}

/**
 * Docker's MAC for an address: 02:42 and the four bytes of the IPv4 address.
 * The host's neighbour entry for an address then stays right when the address
 * is used again (by a new container, or by the same one after its rules were
 * restored), instead of pointing at a gone veth until ARP gives up on it.
 */
export function macForAddress(ip: string): string {
  return ['02', '42', ...ip.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
}

function checkMac(mac: string): string {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) throw invalidArgument(`invalid MAC address: ${mac}`);
  return mac.toLowerCase();
}
