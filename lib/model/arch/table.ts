/**
 * The shape of a tensor table: one row per tensor of an architecture, read by the converter
 * (lib/convert/tensors.ts), the file validator (lib/model/files.ts) and the native spec
 * (lib/model/native-spec.ts). Adding a tensor to an architecture is one row in its table
 * (lib/model/arch/gemma.ts, siglip.ts), plus its use in the native layer loop.
 */

import type { GGMLTypeName } from '../../gguf/types.js';

/**
 * How a tensor may be stored. `weight`: any of KERNEL_WEIGHT_TYPES (the converter's outtype or
 * `paligemma quantize` picks one); `f32`: always F32, because the kernels read it as floats (norms,
 * biases, position embeddings).
 */
export type TypeRule = 'weight' | 'f32';

/**
 * The types the matmul kernels read a `weight` tensor in: the rows of native/kernels/weight_types.h
 * (test/kernels-matmul.test.ts holds the two together). Q4_K and Q6_K need rows of whole 256-element
 * super-blocks, the other quantized types of 32-element blocks.
 */
export const KERNEL_WEIGHT_TYPES: readonly GGMLTypeName[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q5_0', 'Q4_K', 'Q6_K'];

/** One tensor of an architecture. `Dim` names the config's dimensions (hidden, ffn, …). */
export interface TensorRow<Dim extends string = string> {
  /** Field of the file description (lib/model/files.ts) that holds the tensor. */
  readonly key: string;
  /** Set when the field holds a weight and its bias: which of the two this row is. */
  readonly part?: 'weight' | 'bias';
  /** Name in the GGUF file (block rows: after the block prefix). */
  readonly gguf: string;
  /** Name in the Hugging Face checkpoint, transformers ≤ 4.51 layout (block rows: after the block prefix). */
  readonly hf: string;
  /** ggml dims, ne0 first (the PyTorch shape reversed), as named dimensions of the config. */
  readonly dims: readonly Dim[];
  readonly type: TypeRule;
  /** The converter stores 1 + w: Gemma's RMSNorm scales by (1 + weight), and GGUF files carry the sum. */
  readonly addOne?: boolean;
}

/** The tensors of one GGUF file of an architecture, in file order. */
export interface TensorTable<Dim extends string = string> {
  /** Name prefixes of block `i`'s tensors; `{i}` stands for the block index. */
  readonly blockPrefix: { readonly gguf: string; readonly hf: string };
  /** Tensors before the blocks, in each block, and after the blocks. */
  readonly first: readonly TensorRow<Dim>[];
  readonly block: readonly TensorRow<Dim>[];
  readonly last: readonly TensorRow<Dim>[];
  /** What each dimension is, in GGUF metadata keys and in Hugging Face config keys (for error messages). */
  readonly explain: { readonly gguf: Readonly<Record<Dim, string>>; readonly hf: Readonly<Record<Dim, string>> };
}

/** A row placed in a file: its full names, and its block (undefined outside the blocks). */
export interface PlacedTensor<Dim extends string = string> {
  row: TensorRow<Dim>;
  block?: number;
  gguf: string;
  hf: string;
}

/** The name prefix of block `i`'s tensors in a GGUF file (`gguf`) or a Hugging Face checkpoint (`hf`). */
export function blockPrefix(table: TensorTable, i: number, naming: 'gguf' | 'hf' = 'gguf'): string {
  return table.blockPrefix[naming].replace('{i}', String(i));
}

/** Every tensor of a file with `blocks` blocks, in file order. */
export function placeTensors<Dim extends string>(table: TensorTable<Dim>, blocks: number): PlacedTensor<Dim>[] {
  const placed: PlacedTensor<Dim>[] = table.first.map((row) => ({ row, gguf: row.gguf, hf: row.hf }));
  for (let i = 0; i < blocks; i++) {
    const gguf = blockPrefix(table, i), hf = blockPrefix(table, i, 'hf');
    for (const row of table.block) placed.push({ row, block: i, gguf: gguf + row.gguf, hf: hf + row.hf });
  }
  for (const row of table.last) placed.push({ row, gguf: row.gguf, hf: row.hf });
  return placed;
}

/** The row's ggml dims (ne0 first) for a config's dimension sizes. */
export function ggmlDims<Dim extends string>(row: TensorRow<Dim>, sizes: Readonly<Record<Dim, number>>): number[] {
  return row.dims.map((d) => sizes[d]);
}

/** The row's dims in words, in the order `dims` lists them: `ggml` (ne0 first) or `torch` (reversed). */
export function explainDims<Dim extends string>(row: TensorRow<Dim>, words: Readonly<Record<Dim, string>>, order: 'ggml' | 'torch'): string {
  const dims = order === 'ggml' ? row.dims : [...row.dims].reverse();
  return dims.map((d) => words[d]).join(', ');
}

/**
 * The typed record a file description keeps for a group of rows: one field per key, a tensor or a
 * weight/bias pair. `T` is the tensor description (GGUFTensorInfo).
 */
export type TensorFields<Row extends TensorRow, T> = {
  [K in Row['key']]: Extract<Row, { key: K }> extends { part: string } ? { weight: T; bias: T } : T;
};

/** Fills `fields` with the tensor of each row of `rows`, looked up by `get`. */
export function collectFields<Row extends TensorRow, T>(rows: readonly Row[], get: (row: Row) => T): TensorFields<Row, T> {
  const fields: Record<string, T | Partial<Record<'weight' | 'bias', T>>> = {};
  for (const row of rows) {
    const t = get(row);
    if (row.part) ((fields[row.key] ??= {}) as Partial<Record<'weight' | 'bias', T>>)[row.part] = t;
    else fields[row.key] = t;
  }
  return fields as TensorFields<Row, T>;
}

/** The tensor of `row` in `fields` (the inverse of collectFields). */
export function fieldOf<T>(fields: object, row: TensorRow): T {
  const value = (fields as Record<string, unknown>)[row.key];
  return (row.part ? (value as Record<string, unknown>)[row.part] : value) as T;
}
