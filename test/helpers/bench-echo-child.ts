// A bench child for test/bench-harness.test.ts: replies with its input and how it was run, or fails
// when the input says so.
import { childInput, reply } from '../../bench/child.js';

const input = childInput<{ fail?: string }>();
if (input.fail) throw new Error(input.fail);
await reply({ input, execArgv: process.execArgv, script: process.argv[1], cpuSeconds: process.cpuUsage().user / 1e6 });
