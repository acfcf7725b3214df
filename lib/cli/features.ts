import type { Command } from './main.js';
import { cpuFeatures, simdVariant, simdVariants } from '../native.js';

/** `paligemma features`: what this CPU supports and which kernel set runs. */
const features: Command = {
  summary: 'Show the CPU features found and the SIMD kernel set in use',
  usage: 'paligemma features [--json]',
  async run(args) {
    const report = { cpu: cpuFeatures(), variant: simdVariant(), variants: simdVariants() };
    if (args.includes('--json')) {
      console.log(JSON.stringify(report, null, 2));
      return 0;
    }
    const has = Object.entries(report.cpu).filter(([, v]) => v === true).map(([k]) => k);
    console.log(`arch: ${report.cpu.arch}`);
    console.log(`features: ${has.join(' ') || '(none detected)'}`);
    for (const v of report.variants) {
      const mark = v.name === report.variant ? '*' : v.supported ? ' ' : 'x';
      console.log(`  ${mark} ${v.name.padEnd(7)} needs ${v.requires}`);
    }
    console.log(`in use: ${report.variant}`);
    return 0;
  },
};

export default features;
