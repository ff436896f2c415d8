/** Credentials and certificates for auth and TLS tests. */
import fsp from 'node:fs/promises';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { requireTool, run } from './procs.js';

/** Writes an htpasswd file with bcrypt entries (as `htpasswd -B` makes them). */
export async function writeHtpasswd(dir: string, users: Record<string, string>): Promise<string> {
  const file = path.join(dir, 'htpasswd');
  const lines = Object.entries(users).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 5).replace(/^\$2b\$/, '$2y$')}`);
  await fsp.writeFile(file, lines.join('\n') + '\n');
  return file;
}

/** A self-signed certificate for 127.0.0.1 (openssl), returned as file paths and the CA bytes. */
export async function writeCert(dir: string): Promise<{ cert: string; key: string; ca: Buffer; certDir: string }> {
  requireTool('openssl', 'openssl');
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', key, '-out', cert,
  ]);
  // containers/image reads a CA from <dir>/*.crt.
  const certDir = path.join(dir, 'certs.d');
  await fsp.mkdir(certDir, { recursive: true });
  await fsp.copyFile(cert, path.join(certDir, 'ca.crt'));
  return { cert, key, ca: await fsp.readFile(cert), certDir };
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
