/** IPv4 addresses and subnets as numbers: parsing, containment, overlap. */
import { invalidArgument } from '../errdefs/index.js';

export interface Subnet4 {
  /** Network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

export function parseIPv4(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s.trim());
  if (!m) throw invalidArgument(`invalid IPv4 address: ${s}`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) throw invalidArgument(`invalid IPv4 address: ${s}`);
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

export function isIPv4(s: string): boolean {
  try {
    parseIPv4(s);
    return true;
  } catch {
    return false;
  }
}

export function formatIPv4(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** "10.1.0.0/16" (host bits must be zero unless loose). */
export function parseCidr(s: string, loose = false): Subnet4 {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s.trim());
  if (!m) throw invalidArgument(`invalid CIDR address: ${s}`);
  const prefix = Number(m[2]);
  if (prefix > 32) throw invalidArgument(`invalid CIDR address: ${s}`);
  const addr = parseIPv4(m[1]);
  const base = (addr & mask(prefix)) >>> 0;
  if (!loose && base !== addr) throw invalidArgument(`invalid subnet ${s}: it should be ${formatIPv4(base)}/${prefix}`);
  return { base, prefix };
}

export function formatCidr(s: Subnet4): string {
  return `${formatIPv4(s.base)}/${s.prefix}`;
}

export function contains(s: Subnet4, ip: number): boolean {
  return ((ip & mask(s.prefix)) >>> 0) === s.base;
}

export function overlaps(a: Subnet4, b: Subnet4): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & mask(p)) >>> 0) === ((b.base & mask(p)) >>> 0);
}

export function size(s: Subnet4): number {
  return 2 ** (32 - s.prefix);
}

export function broadcast(s: Subnet4): number {
  return (s.base + size(s) - 1) >>> 0;
}

/** Splits a pool into consecutive subnets of the given prefix. */
export function* split(pool: Subnet4, prefix: number): Generator<Subnet4> {
  const step = 2 ** (32 - prefix);
  for (let b = pool.base; b < pool.base + size(pool); b += step) yield { base: b >>> 0, prefix };
}
