import { runPolicyTest } from '../../../src/netpol/lab/cli.js';
process.exitCode = await runPolicyTest(process.argv.slice(2));
