/**
 * Address allocation within a network: the gateway and the network and
 * broadcast addresses are never handed out; allocation goes round-robin
 * after the last address given, so a just-released address is not reused
 * at once (its old veth may still be on its way out).
 */
import { conflict, invalidArgument } from '../errdefs/index.js';
import { type Subnet4, broadcast, contains, formatIPv4, parseCidr, parseIPv4, size } from './ipv4.js';

export class AddressPool {
  private readonly subnet: Subnet4;
  private readonly range: Subnet4;
  private readonly reserved = new Set<number>();
  private readonly used = new Map<number, string>();
  private cursor: number;

  constructor(subnet: string, gateway: string, ipRange?: string) {
    this.subnet = parseCidr(subnet);
    this.range = ipRange ? parseCidr(ipRange) : this.subnet;
    if (!contains(this.subnet, this.range.base)) throw invalidArgument(`ip range ${ipRange} is not in subnet ${subnet}`);
    this.reserved.add(this.subnet.base);
    this.reserved.add(broadcast(this.subnet));
    this.reserved.add(parseIPv4(gateway));
    this.cursor = this.range.base;
  }

  get prefix(): number {
    return this.subnet.prefix;
  }

  has(ip: string): boolean {
    return contains(this.subnet, parseIPv4(ip));
  }

  /** Marks an address as used (restoring state, or a static --ip). */
  claim(ip: string, owner: string): void {
    const n = parseIPv4(ip);
    if (!contains(this.subnet, n)) throw invalidArgument(`no configured subnet contains IP address ${ip}`);
    if (this.reserved.has(n)) throw invalidArgument(`address ${ip} is reserved in this network`);
    const holder = this.used.get(n);
    if (holder !== undefined && holder !== owner) throw conflict(`Address already in use: ${ip}`);
    this.used.set(n, owner);
  }

  allocate(owner: string): string {
    const total = size(this.range);
    for (let i = 0; i < total; i++) {
      this.cursor = this.cursor + 1 >= this.range.base + total ? this.range.base : this.cursor + 1;
      const n = this.cursor >>> 0;
      if (this.reserved.has(n) || this.used.has(n)) continue;
      this.used.set(n, owner);
      return formatIPv4(n);
    }
    throw conflict('no available IPv4 addresses on this network');
  }

  release(owner: string): void {
    for (const [n, o] of this.used) if (o === owner) this.used.delete(n);
  }

  usedCount(): number {
    return this.used.size;
  }
}
