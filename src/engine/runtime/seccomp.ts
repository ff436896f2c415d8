/**
 * Docker's default seccomp profile, filtered into an OCI LinuxSeccomp for a
 * given capability set: rules are kept when their `includes` (caps, arches,
 * minKernel) hold and their `excludes` do not.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

interface ProfileRule {
  names: string[];
  action: string;
  args?: { index: number; value: number; valueTwo?: number; op: string }[] | null;
  errnoRet?: number;
  includes?: { caps?: string[]; arches?: string[]; minKernel?: string };
  excludes?: { caps?: string[]; arches?: string[] };
}

interface Profile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap: { architecture: string; subArchitectures: string[] | null }[];
  syscalls: ProfileRule[];
}

export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: { names: string[]; action: string; args?: ProfileRule['args']; errnoRet?: number }[];
}

const GO_ARCH: Record<string, { go: string; seccomp: string }> = {
  x64: { go: 'amd64', seccomp: 'SCMP_ARCH_X86_64' },
  arm64: { go: 'arm64', seccomp: 'SCMP_ARCH_AARCH64' },
  s390x: { go: 's390x', seccomp: 'SCMP_ARCH_S390X' },
  ppc64: { go: 'ppc64le', seccomp: 'SCMP_ARCH_PPC64LE' },
  riscv64: { go: 'riscv64', seccomp: 'SCMP_ARCH_RISCV64' },
};

let profile: Profile | undefined;
let x32Supported: boolean | undefined;

/**
 * Whether the kernel runs x32 binaries. When it does not (CONFIG_X86_X32_ABI
 * unset, as on most distribution kernels), a filter for that ABI guards
 * nothing but costs libseccomp several milliseconds to compile per start.
 */
function kernelHasX32(): boolean {
  if (x32Supported === undefined) {
    x32Supported = true; // when we cannot tell, keep Docker's filter as it is
    for (const file of ['/proc/config.gz', `/boot/config-${os.release()}`]) {
      try {
        const raw = fs.readFileSync(file);
        const text = file.endsWith('.gz') ? zlib.gunzipSync(raw).toString('utf8') : raw.toString('utf8');
        x32Supported = /^CONFIG_X86_X32(_ABI)?=y/m.test(text);
        break;
      } catch {
        // try the next source
      }
    }
  }
  return x32Supported;
}

function loadProfile(): Profile {
  if (!profile) {
    const here = path.dirname(fileURLToPath(import.meta.url));
    // the JSON sits beside the sources; dist/ mirrors src/ but JSON is read from src
    const candidates = [
      path.join(here, 'profiles', 'seccomp-default.json'),
      path.resolve(here, '../../../../src/engine/runtime/profiles/seccomp-default.json'),
    ];
    const file = candidates.find((c) => fs.existsSync(c));
    if (!file) throw new Error('seccomp default profile not found');
    profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  }
  return profile;
}

function kernelAtLeast(min: string): boolean {
  const [maj, minr] = os.release().split('.').map((n) => parseInt(n, 10));
  const [wantMaj, wantMin] = min.split('.').map((n) => parseInt(n, 10));
  return maj > wantMaj || (maj === wantMaj && minr >= (wantMin || 0));
}

const cache = new Map<string, OciSeccomp>();

export function defaultSeccomp(capabilities: readonly string[]): OciSeccomp {
  const key = [...capabilities].sort().join(',');
  let filter = cache.get(key);
  if (!filter) {
    filter = buildSeccomp(capabilities);
    cache.set(key, filter);
  }
  return filter;
}

function buildSeccomp(capabilities: readonly string[]): OciSeccomp {
  const p = loadProfile();
  const arch = GO_ARCH[process.arch] ?? GO_ARCH.x64;
  const caps = new Set(capabilities);
  const archEntry = p.archMap.find((a) => a.architecture === arch.seccomp);
  let architectures = archEntry ? [archEntry.architecture, ...(archEntry.subArchitectures ?? [])] : [arch.seccomp];
  if (!kernelHasX32()) architectures = architectures.filter((a) => a !== 'SCMP_ARCH_X32');
  const syscalls: OciSeccomp['syscalls'] = [];
  for (const rule of p.syscalls) {
    const inc = rule.includes ?? {};
    const exc = rule.excludes ?? {};
    if (inc.caps?.length && !inc.caps.every((c) => caps.has(c))) continue;
    if (inc.arches?.length && !inc.arches.includes(arch.go)) continue;
    if (inc.minKernel && !kernelAtLeast(inc.minKernel)) continue;
    if (exc.caps?.length && exc.caps.some((c) => caps.has(c))) continue;
    if (exc.arches?.length && exc.arches.includes(arch.go)) continue;
    const out: OciSeccomp['syscalls'][number] = { names: rule.names, action: rule.action };
    if (rule.args?.length) out.args = rule.args;
    if (rule.errnoRet !== undefined) out.errnoRet = rule.errnoRet;
    syscalls.push(out);
  }
  return {
    defaultAction: p.defaultAction,
    ...(p.defaultErrnoRet !== undefined ? { defaultErrnoRet: p.defaultErrnoRet } : {}),
    architectures,
    syscalls,
  };
}
