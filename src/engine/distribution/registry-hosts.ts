/**
 * Where a reference's registry is and how to talk to it: the daemon's
 * registry configuration (--registry-mirror, --insecure-registry, the
 * per-registry CA directory) turned into ordered endpoints.
 *
 *  - docker.io names try each mirror first (as dockerd does), then docker.io
 *    itself (registry-1.docker.io).
 *  - Loopback addresses (127.0.0.0/8, ::1: Docker's default) and --insecure-registry
 *    entries (host[:port] or CIDR) may use plain HTTP: HTTPS is tried first
 *    without certificate checks, and HTTP after a TLS-level failure.
 *  - Everything else is HTTPS with the system CAs plus <certsDir>/<host>/*.crt.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DEFAULT_DOMAIN } from '../../core/images/reference.js';
import { invalidArgument } from '../../core/errdefs/index.js';

export interface RegistryConfig {
  mirrors: string[];
  insecure: string[];
  /** Directory of <host[:port]>/*.crt CA files (Docker's certs.d layout). */
  certsDir: string;
  maxConcurrentDownloads: number;
  maxConcurrentUploads: number;
}

export const DEFAULT_REGISTRY_CONFIG: RegistryConfig = {
  mirrors: [],
  insecure: [],
  certsDir: '/etc/berth/certs.d',
  maxConcurrentDownloads: 3,
  maxConcurrentUploads: 5,
};

export interface Endpoint {
  /** host[:port] used in URLs. */
  host: string;
  /** Schemes to try, in order. */
  schemes: ('https' | 'http')[];
  /** Skip certificate verification (insecure registries only). */
  insecureTLS: boolean;
  /** Extra CA certificates (PEM) for this host. */
  ca?: string[];
  /** A mirror: failures fall through to the next endpoint. */
  mirror: boolean;
}

/** docker.io's API host. */
const DOCKER_HUB_HOST = 'registry-1.docker.io';

export class RegistryHosts {
  private readonly insecureHosts = new Set<string>();
  private readonly insecureNets: net.BlockList = new net.BlockList();
  private readonly mirrorEndpoints: { host: string; scheme?: 'http' | 'https' }[] = [];

  constructor(readonly config: RegistryConfig) {
    for (const entry of config.insecure) {
      const cidr = /^([0-9a-fA-F.:]+)\/(\d+)$/.exec(entry);
      if (cidr) {
        this.insecureNets.addSubnet(cidr[1], Number(cidr[2]), net.isIPv6(cidr[1]) ? 'ipv6' : 'ipv4');
      } else {
        this.insecureHosts.add(entry.replace(/^https?:\/\//, '').replace(/\/$/, ''));
      }
    }
    for (const m of config.mirrors) {
      let url: URL;
      try {
        url = new URL(/^https?:\/\//.test(m) ? m : `https://${m}`);
      } catch {
        throw invalidArgument(`invalid registry mirror ${JSON.stringify(m)}`);
      }
      this.mirrorEndpoints.push({ host: url.host, scheme: /^https?:\/\//.test(m) ? (url.protocol.slice(0, -1) as 'http' | 'https') : undefined });
    }
  }

  /** True when plain HTTP (and unverified TLS) is allowed for host[:port]. */
  isInsecure(host: string): boolean {
    if (this.insecureHosts.has(host)) return true;
    const name = hostName(host);
    const kind = net.isIP(name);
    if (kind === 0) return false;
    if (kind === 4 && name.startsWith('127.')) return true;
    if (kind === 6 && (name === '::1' || name === '0:0:0:0:0:0:0:1')) return true;
    return this.insecureNets.check(name, kind === 6 ? 'ipv6' : 'ipv4');
  }

  /** Endpoints for a registry domain (as in a reference), mirrors first. */
  endpoints(domain: string): Endpoint[] {
    const out: Endpoint[] = [];
    if (domain === DEFAULT_DOMAIN) {
      for (const m of this.mirrorEndpoints) {
        const insecure = this.isInsecure(m.host);
        out.push({
          host: m.host,
          schemes: m.scheme === 'http' ? ['http'] : m.scheme === 'https' || !insecure ? ['https'] : ['https', 'http'],
          insecureTLS: insecure,
          ca: this.caFor(m.host),
          mirror: true,
        });
      }
      out.push(this.endpoint(DOCKER_HUB_HOST));
      return out;
    }
    return [this.endpoint(domain)];
  }

  endpoint(host: string): Endpoint {
    const insecure = this.isInsecure(host);
    return { host, schemes: insecure ? ['https', 'http'] : ['https'], insecureTLS: insecure, ca: this.caFor(host), mirror: false };
  }

  /** PEM CAs from <certsDir>/<host>/*.crt, read when asked (files may change while the daemon runs). */
  private caFor(host: string): string[] | undefined {
    const dir = path.join(this.config.certsDir, host.replace(/[/\\]/g, '_'));
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return undefined;
    }
    const pems = names.filter((n) => n.endsWith('.crt')).map((n) => fs.readFileSync(path.join(dir, n), 'utf8'));
    return pems.length ? pems : undefined;
  }
}

function hostName(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon > 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}
