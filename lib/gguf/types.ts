/**
 * GGUF data model shared by the reader, the writer and every consumer (tokenizer, converter,
 * model loader). GGUF dims are in ggml order: `dims[0]` (ne0) is the contiguous one.
 */

/** Scalar value types, named as in the GGUF spec (gguf_type 0..12 minus string/array). */
export type GGUFScalarType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'u64' | 'i64' | 'f32' | 'f64' | 'bool';

/** Every value type an array item can have. */
export type GGUFItemType = GGUFScalarType | 'string' | 'array';

/** GGUF's numeric type ids, as stored in the file. */
export const GGUF_VALUE_TYPE_IDS = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
} as const satisfies Record<GGUFItemType, number>;

/** A typed metadata value. Numeric arrays are typed arrays, so a 257216-entry score table stays compact. */
export type GGUFValue =
  | { type: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64'; value: number }
  | { type: 'u64' | 'i64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | GGUFArrayValue;

export type GGUFArrayValue =
  | { type: 'array'; itemType: 'u8'; value: Uint8Array }
  | { type: 'array'; itemType: 'i8'; value: Int8Array }
  | { type: 'array'; itemType: 'u16'; value: Uint16Array }
  | { type: 'array'; itemType: 'i16'; value: Int16Array }
  | { type: 'array'; itemType: 'u32'; value: Uint32Array }
  | { type: 'array'; itemType: 'i32'; value: Int32Array }
  | { type: 'array'; itemType: 'u64'; value: BigUint64Array }
  | { type: 'array'; itemType: 'i64'; value: BigInt64Array }
  | { type: 'array'; itemType: 'f32'; value: Float32Array }
  | { type: 'array'; itemType: 'f64'; value: Float64Array }
  | { type: 'array'; itemType: 'bool'; value: boolean[] }
  | { type: 'array'; itemType: 'string'; value: string[] }
  | { type: 'array'; itemType: 'array'; value: GGUFArrayValue[] };

/** ggml tensor types this package knows the block layout of. */
export type GGMLTypeName =
  | 'F32' | 'F16' | 'BF16' | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'Q8_K';

/** One entry of the tensor table, resolved against the file. */
export interface GGUFTensorInfo {
  name: string;
  type: GGMLTypeName;
  /** The ggml type id as stored in the file. */
  typeId: number;
  /** ggml order: dims[0] is contiguous (a PyTorch [out, in] weight has dims [in, out]). */
  dims: number[];
  /** Number of elements (product of dims). */
  elements: number;
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
  /** Size of the tensor's data in bytes. */
  size: number;
}

/** A parsed GGUF header. Tensor data is not read; use `offset`/`size` to map it. */
export interface GGUFFile {
  path: string;
  version: 2 | 3;
  /** `general.alignment`, or 32. */
  alignment: number;
  /** Absolute offset where the tensor data section starts. */
  dataOffset: number;
  fileSize: number;
  /** Metadata in file order. */
  metadata: Map<string, GGUFValue>;
  /** Tensor table in file order. */
  tensors: GGUFTensorInfo[];
  /** Tensor lookup by name. */
  tensorsByName: Map<string, GGUFTensorInfo>;
}

/** Tensor data for the writer: bytes at once, or chunks streamed in order. */
export type GGUFTensorData = ArrayBufferView | Iterable<ArrayBufferView> | AsyncIterable<ArrayBufferView>;

/** A tensor to write. Omitting `data` leaves its region as a hole (zeros; sparse on disk). */
export interface GGUFTensorInput {
  name: string;
  type: GGMLTypeName;
  dims: number[];
  data?: GGUFTensorData | (() => GGUFTensorData);
}

export interface GGUFWriteInput {
  /** Written in iteration order. `general.alignment` (u32), when present, sets the alignment. */
  metadata: Map<string, GGUFValue> | Record<string, GGUFValue>;
  tensors: GGUFTensorInput[];
}
