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

export function linkExists(name: string): boolean {
  return fs.existsSync(`/sys/class/net/${name}`);
}

/** Creates the bridge (with its gateway address and keeper) if it is not there yet. */
export async function ensureBridge(bridge: string, gateway: { address: string; prefix: number }, mtu?: number): Promise<void> {
  const { keeper, peer } = keeperNames(bridge);
  const lines: string[] = [];
  if (!linkExists(bridge)) lines.push(`link add ${bridge}${mtu && mtu !== 1500 ? ` mtu ${mtu}` : ''} type bridge`);
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
