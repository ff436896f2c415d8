/**
 * netavark, the network tool of the container field (containers/netavark):
 * one JSON-in/JSON-out call per container sets up veth, bridge, addresses,
 * routes, NAT, port forwarding and the aardvark-dns entries; teardown undoes
 * it. netavark takes no locks of its own, so callers serialise calls that
 * touch the same network.
 */
import fs from 'node:fs';
import { internal } from '../../core/errdefs/index.js';
import { runHelper } from '../runtime/helper.js';

export interface NetavarkSubnet {
  subnet: string;
  gateway: string;
  lease_range?: { start_ip?: string; end_ip?: string };
}

export interface NetavarkNetwork {
  name: string;
  id: string;
  driver: 'bridge';
  network_interface: string;
  subnets: NetavarkSubnet[];
  ipv6_enabled: false;
  internal: boolean;
  dns_enabled: boolean;
  options: Record<string, string>;
}

export interface NetavarkPortMapping {
  host_ip: string;
  container_port: number;
  host_port: number;
  range: number;
  protocol: string;
}

export interface NetavarkRequest {
  container_id: string;
  container_name: string;
  port_mappings: NetavarkPortMapping[];
  networks: Record<string, { static_ips: string[]; aliases: string[]; interface_name: string; static_mac?: string }>;
  network_info: Record<string, NetavarkNetwork>;
  dns_servers?: string[];
}

export interface NetavarkStatus {
  [network: string]: {
    interfaces?: Record<string, { mac_address: string; subnets?: { ipnet: string; gateway?: string }[] }>;
    dns_server_ips?: string[];
  };
}

export const NETAVARK_PATHS = ['/usr/lib/podman/netavark', '/usr/libexec/podman/netavark', '/usr/local/libexec/podman/netavark'];
export const AARDVARK_PATHS = ['/usr/lib/podman/aardvark-dns', '/usr/libexec/podman/aardvark-dns', '/usr/local/libexec/podman/aardvark-dns'];

export function findBinary(candidates: readonly string[]): string | undefined {
  return candidates.find((p) => fs.existsSync(p));
}

export class Netavark {
  constructor(
    readonly binary: string,
    readonly configDir: string,
    readonly aardvarkBinary: string | undefined,
  ) {}

  private async run(command: 'setup' | 'teardown', netns: string, req: NetavarkRequest): Promise<string> {
    const args = ['--config', this.configDir];
    if (this.aardvarkBinary) args.push('--aardvark-binary', this.aardvarkBinary);
    args.push(command, netns);
    const r = await runHelper(this.binary, args, { input: JSON.stringify(req), env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } }).catch(
      (e: Error) => {
        throw internal(`cannot run netavark: ${e.message}`, e);
      },
    );
    if (r.code === 0) return r.stdout;
    let message = r.stderr.trim() || r.stdout.trim();
    try {
      const parsed = JSON.parse(r.stdout.trim() || r.stderr.trim()) as { error?: string };
      if (parsed.error) message = parsed.error;
    } catch {
      // plain text
    }
    throw internal(`netavark ${command} failed: ${message}`);
  }

  async setup(netns: string, req: NetavarkRequest): Promise<NetavarkStatus> {
    return JSON.parse(await this.run('setup', netns, req)) as NetavarkStatus;
  }

  async teardown(netns: string, req: NetavarkRequest): Promise<void> {
    await this.run('teardown', netns, req);
  }
}
