/**
 * ggml tensor types: ids as stored in GGUF files and block layouts, the facts needed to size tensor data.
 * A block packs `blockSize` consecutive elements of a row into `typeSize` bytes; rows (dims[0]) must be a
 * whole number of blocks.
 */
import type { GGMLTypeName } from './types.js';

/** Block layout of one ggml type. */
export interface GGMLTypeInfo {
  name: GGMLTypeName;
  /** ggml type id, as stored in the tensor table. */
  id: number;
  /** Elements per block. */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

/** Elements per super-block of the k-quants. */
const QK_K = 256;

/** Every ggml type this package can size, by name. Byte counts follow ggml's block structs. */
export const GGML_TYPES: Readonly<Record<GGMLTypeName, GGMLTypeInfo>> = {
  F32: { name: 'F32', id: 0, blockSize: 1, typeSize: 4 },
  F16: { name: 'F16', id: 1, blockSize: 1, typeSize: 2 },
  Q4_0: { name: 'Q4_0', id: 2, blockSize: 32, typeSize: 2 + 16 }, // f16 d, 32 nibbles
  Q4_1: { name: 'Q4_1', id: 3, blockSize: 32, typeSize: 2 + 2 + 16 }, // f16 d, f16 m, 32 nibbles
  Q5_0: { name: 'Q5_0', id: 6, blockSize: 32, typeSize: 2 + 4 + 16 }, // f16 d, 32 high bits, 32 nibbles
  Q5_1: { name: 'Q5_1', id: 7, blockSize: 32, typeSize: 2 + 2 + 4 + 16 }, // f16 d, f16 m, high bits, nibbles
  Q8_0: { name: 'Q8_0', id: 8, blockSize: 32, typeSize: 2 + 32 }, // f16 d, 32 int8
  Q4_K: { name: 'Q4_K', id: 12, blockSize: QK_K, typeSize: 2 + 2 + 12 + QK_K / 2 }, // d, dmin, scales, nibbles
  Q5_K: { name: 'Q5_K', id: 13, blockSize: QK_K, typeSize: 2 + 2 + 12 + QK_K / 8 + QK_K / 2 },
  Q6_K: { name: 'Q6_K', id: 14, blockSize: QK_K, typeSize: QK_K / 2 + QK_K / 4 + QK_K / 16 + 2 }, // ql, qh, scales, d
  Q8_K: { name: 'Q8_K', id: 15, blockSize: QK_K, typeSize: 4 + QK_K + (QK_K / 16) * 2 }, // f32 d, int8, i16 bsums
  BF16: { name: 'BF16', id: 30, blockSize: 1, typeSize: 2 },
};

const TYPES_BY_ID = new Map<number, GGMLTypeInfo>(Object.values(GGML_TYPES).map((t) => [t.id, t]));

/**
 * ggml types that exist but whose data this package cannot size or use; named in error messages so that
 * "unsupported" is not mistaken for "corrupt".
 */
const UNSUPPORTED_TYPE_NAMES: Readonly<Record<number, string>> = {
  4: 'Q4_2 (removed)', 5: 'Q4_3 (removed)', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K', 16: 'IQ2_XXS', 17: 'IQ2_XS',
  18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16',
  26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};

/** Whether a type stores blocks of quantized values (everything but F32, F16 and BF16). */
export function isQuantizedType(type: GGMLTypeInfo): boolean {
  return type.blockSize > 1;
}

/**
 * llama.cpp's `general.file_type` values (enum llama_ftype) for the files this package writes: the type
 * of most weights, `MOSTLY_Q4_K_M` for llama.cpp's Q4_K_M mix.
 */
export const LLAMA_FILE_TYPE = {
  ALL_F32: 0, MOSTLY_F16: 1, MOSTLY_Q4_0: 2, MOSTLY_Q8_0: 7, MOSTLY_Q5_0: 8, MOSTLY_Q4_K_M: 15, MOSTLY_Q6_K: 18,
  MOSTLY_BF16: 32,
} as const;

/** ggml's GGML_QNT_VERSION, written as `general.quantization_version` into quantized files. */
export const GGML_QUANTIZATION_VERSION = 2;

/** The layout of a supported ggml type id, or undefined. */
export function ggmlTypeById(id: number): GGMLTypeInfo | undefined {
  return TYPES_BY_ID.get(id);
}

/** Describes a type id this package does not support, for error messages. */
export function describeUnsupportedTypeId(id: number): string {
  const known = UNSUPPORTED_TYPE_NAMES[id];
  return known ? `ggml type ${known} (id ${id}) is not supported` : `unknown ggml type id ${id}`;
}

/** Whether `name` is a ggml type this package supports (runtime check for untyped input). */
export function isGGMLTypeName(name: unknown): name is GGMLTypeName {
  return typeof name === 'string' && Object.hasOwn(GGML_TYPES, name);
}

/**
 * Bytes of the data of a tensor with `elements` elements. The caller has checked that rows (dims[0]) are a
 * whole number of blocks. Beyond 2^53 the result is approximate, which only matters for sizes no file has.
 */
export function ggmlTensorBytes(type: GGMLTypeInfo, elements: number): number {
  return (elements / type.blockSize) * type.typeSize;
}
