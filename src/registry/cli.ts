/** `berth registry ...`: the OCI Distribution registry server (see issue 4). */
export async function registryMain(argv: string[]): Promise<number> {
  process.stderr.write(`berth registry: not built yet (${argv.join(' ')})\n`);
  return 1;
}
