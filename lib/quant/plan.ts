/**
 * Which type each tensor gets: llama.cpp's choices for the text model (llama_tensor_get_type, no
 * importance matrix), and a fixed rule for the projector. Pure functions of names and shapes, so the
 * plan can be checked without any weights.
 */
import { GGML_TYPES, isQuantizedType, LLAMA_FILE_TYPE } from '../gguf/ggml-types.js';
import type { GGMLTypeName } from '../gguf/types.js';

/** A quantization mix, named as llama.cpp's `llama-quantize` names it (lowercase). */
export type QuantMix = 'q8_0' | 'q4_0' | 'q4_k_m' | 'q6_k';

/** Every accepted mix. */
export const QUANT_MIXES: readonly QuantMix[] = ['q8_0', 'q4_0', 'q4_k_m', 'q6_k'];

/** A tensor as the plan sees it. */
export interface PlannedTensorInput {
  name: string;
  /** ggml order: dims[0] is the row length. */
  dims: readonly number[];
  type: GGMLTypeName;
}

/** The type most weights of a mix get. */
const DEFAULT_TYPE: Record<QuantMix, GGMLTypeName> = { q8_0: 'Q8_0', q4_0: 'Q4_0', q4_k_m: 'Q4_K', q6_k: 'Q6_K' };

/** `general.file_type` of a text model quantized with each mix. */
export const MIX_FILE_TYPE: Record<QuantMix, number> = {
  q8_0: LLAMA_FILE_TYPE.MOSTLY_Q8_0,
  q4_0: LLAMA_FILE_TYPE.MOSTLY_Q4_0,
  q4_k_m: LLAMA_FILE_TYPE.MOSTLY_Q4_K_M,
  q6_k: LLAMA_FILE_TYPE.MOSTLY_Q6_K,
};

/** `general.file_type` of a quantized projector: Q8_0 for every mix. */
export const PROJECTOR_FILE_TYPE = LLAMA_FILE_TYPE.MOSTLY_Q8_0;

/** llama.cpp's fallback for a 256-block type on rows that are not a multiple of 256. */
const FALLBACK: Partial<Record<GGMLTypeName, GGMLTypeName>> = { Q4_K: 'Q5_0', Q6_K: 'Q8_0' };

const fits = (type: GGMLTypeName, rowLength: number) => rowLength % GGML_TYPES[type].blockSize === 0;

/**
 * llama.cpp's choice for the layers that get more bits in Q4_K_M (`use_more_bits`): the first and last
 * eighth of the layers and every third one between. Layer 4, 7, 10, … for 18 layers.
 */
export function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.trunc(layers / 8);
  return layer < eighth || layer >= Math.trunc((7 * layers) / 8) || (layer - eighth) % 3 === 2;
}

/** Whether llama.cpp quantizes a tensor at all: 2-D+ weights, not norms, not position embeddings. */
function isQuantizable(t: PlannedTensorInput): boolean {
  return t.dims.length >= 2 && t.name.endsWith('weight') && !t.name.includes('_norm.weight') && !t.name.includes('position_embd');
}

/** A type the row length allows: llama.cpp's fallback chain, F16 at the end (rows not a multiple of 32). */
export function withFallback(type: GGMLTypeName, rowLength: number): GGMLTypeName {
  if (fits(type, rowLength)) return type;
  const fallback = FALLBACK[type];
  return fallback !== undefined && fits(fallback, rowLength) ? fallback : 'F16';
}

/**
 * The type of every tensor of a text model quantized with `mix`, in order. Follows llama.cpp: the output
 * head (or the token embedding, when it is tied to it, as in Gemma) gets Q6_K unless the mix is Q8_0;
 * Q4_K_M gives `attn_v` and `ffn_down` Q6_K on the layers `useMoreBits` picks; rows that are not a whole
 * number of blocks fall back (Q4_K → Q5_0, Q6_K → Q8_0, then F16). Other tensors keep their type.
 */
export function planTextModel(tensors: readonly PlannedTensorInput[], mix: QuantMix): GGMLTypeName[] {
  const base = DEFAULT_TYPE[mix];
  const tied = !tensors.some((t) => t.name === 'output.weight');
  const count = (part: string) => tensors.filter((t) => t.name.includes(part)).length;
  const attnV = { i: 0, n: count('attn_v.weight') };
  const ffnDown = { i: 0, n: count('ffn_down') };
  return tensors.map((t) => {
    if (!isQuantizable(t)) return t.type;
    const rowLength = t.dims[0]!;
    let type = base;
    if (t.name === 'output.weight' || (tied && t.name === 'token_embd.weight')) {
      if (!fits(base, rowLength)) type = 'Q8_0';
      else if (base !== 'Q8_0') type = 'Q6_K';
    } else if (t.name.includes('attn_v.weight')) {
      if (mix === 'q4_k_m' && useMoreBits(attnV.i, attnV.n)) type = 'Q6_K';
      attnV.i++;
    } else if (t.name.includes('ffn_down')) {
      if (mix === 'q4_k_m' && useMoreBits(ffnDown.i, ffnDown.n)) type = 'Q6_K';
      ffnDown.i++;
    }
    return withFallback(type, rowLength);
  });
}

/**
 * The type of every tensor of a projector (SigLIP + linear projector), whatever the mix: Q8_0 where the
 * row length is a multiple of 32, F16 elsewhere (SigLIP's fc2 has 4304 inputs, the patch embedding rows
 * of 14); norms, biases and the position embedding keep their type.
 */
export function planProjector(tensors: readonly PlannedTensorInput[]): GGMLTypeName[] {
  return tensors.map((t) => (isQuantizable(t) ? withFallback('Q8_0', t.dims[0]!) : t.type));
}

/** Whether a planned type is one of the quantized block types (rather than F32/F16/BF16). */
export function isQuantizedName(type: GGMLTypeName): boolean {
  return isQuantizedType(GGML_TYPES[type]);
}
