import type { Command } from './command.js';
import { parseArgs, UsageError, type OptionSpecs } from './args.js';
import { EXIT } from './errors.js';

const OPTIONS = { json: { type: 'boolean' } } as const satisfies OptionSpecs;

/** `paligemma features`: what this CPU supports and which kernel set runs. */
const features: Command = {
  summary: 'Show the CPU features found and the SIMD kernel set in use',
  usage: 'paligemma features [--json]',
  async run(args) {
    const { positional, options } = parseArgs(args, OPTIONS);
    if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
    // Imported here so that `paligemma --help` works even where the native addon cannot load.
    const { cpuFeatures, simdVariant, simdVariants } = await import('../native.js');
    const report = { cpu: cpuFeatures(), variant: simdVariant(), variants: simdVariants() };
    if (options.json) {
      console.log(JSON.stringify(report, null, 2));
      return EXIT.OK;
    }
    const has = Object.entries(report.cpu).filter(([, v]) => v === true).map(([k]) => k);
    console.log(`arch: ${report.cpu.arch}`);
    console.log(`features: ${has.join(' ') || '(none detected)'}`);
    for (const v of report.variants) {
      const mark = v.name === report.variant ? '*' : v.supported ? ' ' : 'x';
      console.log(`  ${mark} ${v.name.padEnd(7)} needs ${v.requires}`);
    }
    console.log(`in use: ${report.variant}`);
    return EXIT.OK;
  },
};

export default features;
