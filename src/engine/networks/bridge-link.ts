/**
 * Bridges stay up between containers. netavark deletes a bridge (and the
 * network's firewall rules, thirty iptables calls, ~300 ms) whenever its last
 * container leaves; a "keeper" veth pair attached to the bridge keeps it
 * non-empty, so a container leaving costs only its own rules. Removing the
 * network removes the keeper first, then lets netavark clean up.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { internal } from '../../core/errdefs/index.js';
import { run, runChecked } from '../../util/proc.js';

export function keeperNames(bridge: string): { keeper: string; peer: string } {
  const h = crypto.createHash('sha256').update(bridge).digest('hex').slice(0, 12);
  return { keeper: `bk-${h}`, peer: `bp-${h}` };
}

/** addr_assign_type of a link whose address was set by user space. */
const NET_ADDR_SET = '3';

function readSys(link: string, attribute: string): string {
  try {
    return fs.readFileSync(`/sys/class/net/${link}/${attribute}`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** A random unicast, locally administered MAC address. */
export function randomMac(): string {
  const b = crypto.randomBytes(6);
  b[0] = (b[0] & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function linkExists(name: string): boolean {
  return fs.existsSync(`/sys/class/net/${name}`);
}

/** Creates the bridge (with its gateway address and keeper) if it is not there yet. */
export async function ensureBridge(bridge: string, gateway: { address: string; prefix: number }, mtu?: number): Promise<void> {
  const { keeper, peer } = keeperNames(bridge);
  const lines: string[] = [];
  // A bridge's MAC follows the lowest MAC among its ports unless it was set: each container
  // joining or leaving could change the gateway's MAC under the others' ARP caches (their
  // traffic to the gateway, DNS included, then goes nowhere until ARP retries, ~30 s). So
  // it is set: a random one for a new bridge, its current one for a bridge that has none.
  if (!linkExists(bridge)) {
    lines.push(`link add ${bridge}${mtu && mtu !== 1500 ? ` mtu ${mtu}` : ''} address ${randomMac()} type bridge`);
  } else if (readSys(bridge, 'addr_assign_type') !== NET_ADDR_SET) {
    const mac = readSys(bridge, 'address');
    if (mac) lines.push(`link set ${bridge} address ${mac}`);
  }
  // netavark assigns the gateway only to bridges it creates itself; replace is idempotent
  lines.push(`addr replace ${gateway.address}/${gateway.prefix} dev ${bridge}`);
  if (!linkExists(keeper)) {
    lines.push(`link add ${keeper} type veth peer name ${peer}`);
    lines.push(`link set ${keeper} master ${bridge}`);
    lines.push(`link set ${keeper} up`);
  }
  lines.push(`link set ${bridge} up`);
  const r = await run('ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
  if (r.code !== 0) throw internal(`creating bridge ${bridge} failed: ${r.stderr.split('\n')[0].trim()}`);
}

export async function removeKeeper(bridge: string): Promise<void> {
  const { keeper } = keeperNames(bridge);
  if (linkExists(keeper)) await runChecked('ip', ['link', 'del', keeper]).catch(() => {});
}

export async function removeLink(name: string): Promise<void> {
  if (linkExists(name)) await runChecked('ip', ['link', 'del', name]).catch(() => {});
}
