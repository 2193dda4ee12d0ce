export async function runPolicyExplain(_args: string[]): Promise<number> {
  return 2;
}
