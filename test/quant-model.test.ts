// `quantizeModel`, `paligemma quantize` and `convert --outtype q8_0`: the tensor-type plan (llama.cpp's
// mixes on the real model's shapes), the files they write, and their refusals.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PALIGEMMA_3B_MIX_224 } from '../bench/model-files.js';
import { parseConfig } from '../lib/convert/config.js';
import { convertCheckpoint } from '../lib/convert/convert.js';
import { projectorTensorPlan } from '../lib/convert/tensors.js';
import { GGML_TYPES } from '../lib/gguf/ggml-types.js';
import { readGGUF } from '../lib/gguf/reader.js';
import type { GGMLTypeName, GGUFFile } from '../lib/gguf/types.js';
import { writeGGUF } from '../lib/gguf/writer.js';
import { QuantizeError } from '../lib/quant/errors.js';
import { native } from '../lib/native.js';
import { planProjector, planTextModel, useMoreBits } from '../lib/quant/plan.js';
import type { QuantMix } from '../lib/quant/plan.js';
import { quantizeModel } from '../lib/quant/quantize.js';
import type { QuantizeProgress } from '../lib/quant/quantize.js';
import { paligemmaTextModelLayout, tensorBytes } from './helpers/gguf-fixtures.js';
import { fixtureDir } from './helpers/hf-checkpoint.js';

describe('the plan on the real model shapes', () => {
  const text = paligemmaTextModelLayout().tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type }));
  const typesOf = (mix: QuantMix) => new Map(planTextModel(text, mix).map((type, i) => [text[i]!.name, type]));

  it("useMoreBits picks llama.cpp's layers for 18 blocks", () => {
    expect(Array.from({ length: 18 }, (_, i) => i).filter((i) => useMoreBits(i, 18))).toEqual([0, 1, 4, 7, 10, 13, 15, 16, 17]);
  });

  it('q4_k_m: token_embd Q6_K, attn_v and ffn_down Q6_K on the more-bits layers, every other weight Q4_K, norms F32', () => {
    const types = typesOf('q4_k_m');
    expect(types.get('token_embd.weight')).toBe('Q6_K');
    expect(types.get('output_norm.weight')).toBe('F32');
    for (let i = 0; i < 18; i++) {
      const more = useMoreBits(i, 18) ? 'Q6_K' : 'Q4_K';
      expect(types.get(`blk.${i}.attn_v.weight`)).toBe(more);
      expect(types.get(`blk.${i}.ffn_down.weight`)).toBe(more);
      for (const n of ['attn_q', 'attn_k', 'attn_output', 'ffn_gate', 'ffn_up']) expect(types.get(`blk.${i}.${n}.weight`)).toBe('Q4_K');
      for (const n of ['attn_norm', 'ffn_norm']) expect(types.get(`blk.${i}.${n}.weight`)).toBe('F32');
    }
  });

  it('q8_0 everywhere; q6_k everywhere; q4_0 with the tied embedding in Q6_K', () => {
    const weights = text.filter((t) => t.dims.length === 2).map((t) => t.name);
    for (const [mix, type, embedding] of [['q8_0', 'Q8_0', 'Q8_0'], ['q6_k', 'Q6_K', 'Q6_K'], ['q4_0', 'Q4_0', 'Q6_K']] as const) {
      const types = typesOf(mix);
      for (const name of weights) expect(types.get(name), `${mix} ${name}`).toBe(name === 'token_embd.weight' ? embedding : type);
    }
  });

  it('an untied output head gets Q6_K and the embedding the base type; rows off the block size fall back', () => {
    const tensors = [
      { name: 'token_embd.weight', dims: [512, 10], type: 'F16' as const },
      { name: 'output.weight', dims: [512, 10], type: 'F16' as const },
      { name: 'blk.0.attn_q.weight', dims: [96, 64], type: 'F16' as const },
      { name: 'blk.0.ffn_down.weight', dims: [288, 64], type: 'F16' as const },
      { name: 'blk.0.attn_k.weight', dims: [40, 64], type: 'F16' as const },
    ];
    expect(planTextModel(tensors, 'q4_k_m')).toEqual(['Q4_K', 'Q6_K', 'Q5_0', 'Q8_0', 'F16']);
    expect(planTextModel(tensors, 'q8_0')).toEqual(['Q8_0', 'Q8_0', 'Q8_0', 'Q8_0', 'F16']);
  });

  it('projector: Q8_0 where rows are a multiple of 32, F16 for fc2 (4304) and the patch embedding, F32 kept', () => {
    const plan = projectorTensorPlan(parseConfig(PALIGEMMA_3B_MIX_224));
    const tensors = plan.map((m) => ({ name: m.gguf, dims: [...m.shape].reverse(), type: (m.storage === 'F32' ? 'F32' : 'F16') as GGMLTypeName }));
    const types = new Map(planProjector(tensors).map((type, i) => [tensors[i]!.name, type]));
    expect(types.get('v.patch_embd.weight')).toBe('F16');
    expect(types.get('v.position_embd.weight')).toBe('F32');
    expect(types.get('v.blk.3.ffn_down.weight')).toBe('F16');
    expect(types.get('v.blk.3.ffn_up.weight')).toBe('Q8_0');
    expect(types.get('v.blk.3.attn_q.weight')).toBe('Q8_0');
    expect(types.get('v.blk.3.attn_q.bias')).toBe('F32');
    expect(types.get('v.blk.3.ln1.weight')).toBe('F32');
    expect(types.get('mm.0.weight')).toBe('Q8_0');
  });
});

describe('quantizeModel on the tiny model', () => {
  let dir: string;
  let f16: { text: string; projector: string };
  let f32Text: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'pg-quant-'));
    const a = await convertCheckpoint(fixtureDir, { outDir: path.join(dir, 'f16') });
    f16 = { text: a.textPath, projector: a.projectorPath };
    f32Text = (await convertCheckpoint(fixtureDir, { outDir: path.join(dir, 'f32'), outType: 'f32' })).textPath;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The bytes the native quantizer makes of a whole F16/F32 tensor. */
  async function quantizeTensor(src: GGUFFile, name: string, to: GGMLTypeName): Promise<Uint8Array> {
    const t = src.tensorsByName.get(name)!;
    const rows = t.elements / t.dims[0]!;
    const out = new Uint8Array((t.elements / GGML_TYPES[to].blockSize) * GGML_TYPES[to].typeSize);
    expect(await native.quantizeRowsAsync(GGML_TYPES[to].id, tensorBytes(src, name).slice(), t.typeId, rows, t.dims[0]!, out)).toBeNull();
    return out;
  }

  for (const mix of ['q8_0', 'q4_0', 'q4_k_m', 'q6_k'] as const) {
    it(`${mix}: the plan's types, each tensor's bytes from the native quantizer, llama.cpp's metadata`, async () => {
      const out = path.join(dir, `text-${mix}.gguf`);
      const progress: QuantizeProgress[] = [];
      const result = await quantizeModel(f16.text, out, { type: mix, onProgress: (p) => progress.push(p), concurrency: 2 });
      const src = await readGGUF(f16.text);
      const q = await readGGUF(out);
      const planned = planTextModel(src.tensors, mix);
      expect(q.tensors.map((t) => t.type)).toEqual(planned);
      expect(result.tensors.map((t) => t.to)).toEqual(planned);
      expect(result.kind).toBe('text');
      expect(q.metadata.get('general.file_type')).toEqual({ type: 'u32', value: { q8_0: 7, q4_0: 2, q4_k_m: 15, q6_k: 18 }[mix] });
      expect(q.metadata.get('general.quantization_version')).toEqual({ type: 'u32', value: 2 });
      expect(q.metadata.get('tokenizer.ggml.tokens')).toEqual(src.metadata.get('tokenizer.ggml.tokens'));
      for (const t of q.tensors) {
        const expected = GGML_TYPES[t.type].blockSize > 1 ? await quantizeTensor(src, t.name, t.type) : tensorBytes(src, t.name);
        expect(Buffer.from(tensorBytes(q, t.name)).equals(Buffer.from(expected)), t.name).toBe(true);
      }
      expect(progress.at(-1)!.bytesDone).toBe(progress.at(-1)!.bytesTotal);
      expect(progress.every((p, i) => i === 0 || p.bytesDone >= progress[i - 1]!.bytesDone)).toBe(true);
    });
  }

  it('projector: Q8_0 / F16 / F32 by the projector plan, file type Q8_0, for any mix', async () => {
    const out = path.join(dir, 'mmproj-q.gguf');
    const result = await quantizeModel(f16.projector, out, { type: 'q4_k_m' });
    const src = await readGGUF(f16.projector);
    const q = await readGGUF(out);
    expect(result.kind).toBe('projector');
    expect(q.tensors.map((t) => t.type)).toEqual(planProjector(src.tensors));
    expect(q.tensors.some((t) => t.type === 'Q8_0')).toBe(true);
    expect(q.metadata.get('general.file_type')).toEqual({ type: 'u32', value: 7 });
  });

  it('convert --outtype q8_0 writes what quantize --type q8_0 makes of the F32 conversion', async () => {
    const r = await convertCheckpoint(fixtureDir, { outDir: path.join(dir, 'q8'), outType: 'q8_0' });
    const viaQuantize = path.join(dir, 'text-from-f32-q8_0.gguf');
    await quantizeModel(f32Text, viaQuantize, { type: 'q8_0' });
    const a = await readGGUF(r.textPath);
    const b = await readGGUF(viaQuantize);
    expect(a.tensors.map((t) => [t.name, t.type])).toEqual(b.tensors.map((t) => [t.name, t.type]));
    expect(a.tensors.some((t) => t.type === 'Q8_0')).toBe(true);
    for (const t of a.tensors) expect(Buffer.from(tensorBytes(a, t.name)).equals(Buffer.from(tensorBytes(b, t.name))), t.name).toBe(true);
    expect(a.metadata.get('general.file_type')).toEqual({ type: 'u32', value: 7 });
    const projector = await readGGUF(r.projectorPath);
    expect(projector.tensors.map((t) => t.type)).toEqual(planProjector(projector.tensors.map((t) => ({ ...t, type: t.type === 'F32' ? 'F32' : 'F16' }))));
  });

  it('refuses a NaN weight, naming the tensor and row, and leaves no file behind', async () => {
    const bad = path.join(dir, 'nan.gguf');
    copyFileSync(f16.text, bad);
    const src = await readGGUF(bad);
    const t = src.tensorsByName.get('blk.1.ffn_down.weight')!;
    const fd = openSync(bad, 'r+');
    writeSync(fd, Buffer.from([0x00, 0x7e]), 0, 2, t.offset + 2 * (5 * t.dims[0]! + 7)); // F16 NaN at row 5, element 7
    closeSync(fd);
    const out = path.join(dir, 'nan-q8.gguf');
    const err = await quantizeModel(bad, out, { type: 'q8_0' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuantizeError);
    expect((err as QuantizeError).code).toBe('NON_FINITE');
    expect((err as QuantizeError).message).toMatch(/tensor 'blk\.1\.ffn_down\.weight' row 5: element 7 is NaN/);
    expect(existsSync(out) || existsSync(`${out}.partial`)).toBe(false);
  });

  it('aborts on the signal, removing the partial output', async () => {
    const out = path.join(dir, 'aborted.gguf');
    const controller = new AbortController();
    const err = await quantizeModel(f16.text, out, {
      type: 'q4_k_m',
      signal: controller.signal,
      onProgress: (p) => p.bytesDone > p.bytesTotal / 3 && controller.abort(),
    }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    expect(readdirSync(dir).filter((f) => f.startsWith('aborted'))).toEqual([]);
  });

  it('refuses its own input as output, an unknown type, a quantized input and a non-PaliGemma file', async () => {
    const code = (p: Promise<unknown>) => p.then(() => 'resolved', (e: QuantizeError) => e.code);
    expect(await code(quantizeModel(f16.text, f16.text, { type: 'q8_0' }))).toBe('BAD_OPTION');
    expect(await code(quantizeModel(f16.text, path.join(dir, 'x.gguf'), { type: 'q5_k' as QuantMix }))).toBe('BAD_OPTION');
    const q = path.join(dir, 'text-q8_0.gguf');
    if (!existsSync(q)) await quantizeModel(f16.text, q, { type: 'q8_0' });
    expect(await code(quantizeModel(q, path.join(dir, 'y.gguf'), { type: 'q4_0' }))).toBe('UNSUPPORTED_TENSOR_TYPE');
    const llama = path.join(dir, 'llama.gguf');
    await writeGGUF(llama, { metadata: { 'general.architecture': { type: 'string', value: 'llama' } }, tensors: [] });
    expect(await code(quantizeModel(llama, path.join(dir, 'z.gguf'), { type: 'q4_0' }))).toBe('UNSUPPORTED_MODEL');
  });

  it('paligemma quantize: prints the output path; bad usage exits 2', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', 'quantize', ...args], { encoding: 'utf8' });
    const out = path.join(dir, 'cli-q6.gguf');
    const ok = run(f16.text, out, '--type', 'q6_k');
    expect(ok.status).toBe(0);
    expect(ok.stdout.trim()).toBe(out);
    const noType = run(f16.text, out);
    expect(noType.status).toBe(2);
    expect(noType.stderr).toMatch(/missing --type/);
    const badType = run(f16.text, out, '--type', 'q2_k');
    expect(badType.status).toBe(2);
    const quantized = run(out, path.join(dir, 'again.gguf'), '--type', 'q4_0');
    expect(quantized.status).toBe(1);
    expect(quantized.stderr).toMatch(/is Q\w+ already[\s\S]*hint: quantize the F16/);
  });
});
