/**
 * Resolving `User` ("name", "uid", "name:group", "uid:gid") against the
 * container's own /etc/passwd and /etc/group, as runc's libcontainer/user does.
 */
import { invalidArgument } from '../../core/errdefs/index.js';
import { readInRoot, readInRootSync } from './rootfs-path.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

function parsePasswd(text: string | undefined): PasswdEntry[] {
  if (!text) return [];
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 7) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0], uid, gid, home: f[5] });
  }
  return out;
}

function parseGroup(text: string | undefined): GroupEntry[] {
  if (!text) return [];
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid)) continue;
    out.push({ name: f[0], gid, members: f[3] ? f[3].split(',') : [] });
  }
  return out;
}

const isNumeric = (s: string): boolean => /^\d+$/.test(s);

export async function resolveUser(rootfs: string, spec: string, groupAdd: readonly string[] = []): Promise<ResolvedUser> {
  const [passwdText, groupText] = await Promise.all([readInRoot(rootfs, '/etc/passwd'), readInRoot(rootfs, '/etc/group')]);
  return resolveUserIn(passwdText, groupText, spec, groupAdd);
}

/** resolveUser without the thread pool (exec, where each millisecond shows). */
export function resolveUserSync(rootfs: string, spec: string, groupAdd: readonly string[] = []): ResolvedUser {
  return resolveUserIn(readInRootSync(rootfs, '/etc/passwd'), readInRootSync(rootfs, '/etc/group'), spec, groupAdd);
}

function resolveUserIn(passwdText: string | undefined, groupText: string | undefined, spec: string, groupAdd: readonly string[]): ResolvedUser {
  const [userPart, groupPart] = spec === '' ? ['', undefined] : spec.split(':', 2);
  const passwd = parsePasswd(passwdText);
  const groups = parseGroup(groupText);

  let entry: PasswdEntry | undefined;
  let uid: number;
  let gid: number;
  if (userPart === '') {
    entry = passwd.find((p) => p.uid === 0);
    uid = 0;
    gid = entry?.gid ?? 0;
  } else if (isNumeric(userPart)) {
    uid = Number(userPart);
    entry = passwd.find((p) => p.uid === uid);
    gid = entry?.gid ?? 0;
  } else {
    entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw invalidArgument(`unable to find user ${userPart}: no matching entries in passwd file`);
    uid = entry.uid;
    gid = entry.gid;
  }
  if (uid > 0x7fffffff) throw invalidArgument(`uid ${userPart} out of range`);

  if (groupPart !== undefined && groupPart !== '') {
    if (isNumeric(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw invalidArgument(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  }

  const additional = new Set<number>();
  // supplementary groups from /etc/group membership, only when no group was forced
  if (entry && (groupPart === undefined || groupPart === '')) {
    for (const g of groups) if (g.members.includes(entry.name) && g.gid !== gid) additional.add(g.gid);
  }
  for (const g of groupAdd) {
    if (isNumeric(g)) additional.add(Number(g));
    else {
      const found = groups.find((x) => x.name === g);
      if (!found) throw invalidArgument(`unable to find group ${g}: no matching entries in group file`);
      additional.add(found.gid);
    }
  }
  return { uid, gid, additionalGids: [...additional], home: entry?.home ?? '/' };
}
