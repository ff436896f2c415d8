/**
 * Registry credentials on the client side, in the docker CLI's config file
 * ($DOCKER_CONFIG/config.json, else ~/.docker/config.json; "auths" with
 * base64 "user:password"), so `berth login` and `docker login` share them.
 * Written atomically with mode 0600. X-Registry-Auth is built from it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

interface ConfigFile {
  auths?: Record<string, { auth?: string; identitytoken?: string }>;
  [key: string]: unknown;
}

export function configPath(): string {
  const dir = process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

function readConfig(): ConfigFile {
  try {
    return JSON.parse(fs.readFileSync(configPath(), 'utf8')) as ConfigFile;
  } catch {
    return {};
  }
}

function writeConfig(cfg: ConfigFile): void {
  const file = configPath();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${crypto.randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeFileSync(fd, JSON.stringify(cfg, null, '\t') + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** The registry host of an image name, as Docker splits it ("busybox" -> docker.io). */
export function registryOfImage(name: string): string {
  const i = name.indexOf('/');
  if (i < 0) return 'docker.io';
  const first = name.slice(0, i);
  if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) return first;
  return 'docker.io';
}

/** The config.json key of a registry (Docker Hub has its historical URL). */
export function authKey(registry: string): string {
  const host = registry.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  return host === 'docker.io' || host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB_AUTH_KEY : host;
}

export function storeCredentials(registry: string, username: string, password: string): string {
  const cfg = readConfig();
  const key = authKey(registry);
  cfg.auths = { ...(cfg.auths ?? {}), [key]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } };
  writeConfig(cfg);
  return configPath();
}

export function removeCredentials(registry: string): boolean {
  const cfg = readConfig();
  const key = authKey(registry);
  if (!cfg.auths?.[key]) return false;
  delete cfg.auths[key];
  writeConfig(cfg);
  return true;
}

/** X-Registry-Auth for an image's registry: base64url JSON, "{}" when there are no credentials. */
export function registryAuthHeader(image: string): string {
  const registry = registryOfImage(image);
  const entry = readConfig().auths?.[authKey(registry)] ?? readConfig().auths?.[`https://${registry}`] ?? readConfig().auths?.[`http://${registry}`];
  const body: Record<string, string> = {};
  if (entry?.auth) {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    body.username = text.slice(0, colon);
    body.password = text.slice(colon + 1);
    body.serveraddress = authKey(registry);
  }
  if (entry?.identitytoken) body.identitytoken = entry.identitytoken;
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}
