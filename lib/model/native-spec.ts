/**
 * Turns validated model files (lib/model/files.ts) into the spec the native model handle takes:
 * configs plus every tensor under the canonical names native/bind_model.cc looks up, so the
 * variants seen in the wild (projector names, swapped ffn names) are resolved here, once.
 */
import type { GGUFTensorInfo } from '../gguf/types.js';
import type { ProjectorFile, TextModelFile, WeightBias } from './files.js';

/** Where one tensor lives in its file. */
export interface NativeTensor {
  offset: number;
  type: number;
  dims: number[];
}

export interface NativeTextSpec {
  path: string;
  config: {
    nLayers: number;
    hidden: number;
    nHeads: number;
    nKvHeads: number;
    headDim: number;
    ffn: number;
    vocab: number;
    context: number;
    eps: number;
    ropeTheta: number;
  };
  tensors: Record<string, NativeTensor>;
}

export interface NativeVisionSpec {
  path: string;
  config: {
    imageSize: number;
    patchSize: number;
    hidden: number;
    nHeads: number;
    ffn: number;
    nLayers: number;
    projectionDim: number;
    eps: number;
  };
  tensors: Record<string, NativeTensor>;
}

function tensor(t: GGUFTensorInfo): NativeTensor {
  return { offset: t.offset, type: t.typeId, dims: t.dims };
}

export function textSpec(text: TextModelFile): NativeTextSpec {
  const tensors: Record<string, NativeTensor> = {
    'token_embd.weight': tensor(text.tensors.tokenEmbd),
    'output_norm.weight': tensor(text.tensors.outputNorm),
  };
  text.tensors.blocks.forEach((b, i) => {
    const p = `blk.${i}.`;
    tensors[p + 'attn_norm.weight'] = tensor(b.attnNorm);
    tensors[p + 'attn_q.weight'] = tensor(b.attnQ);
    tensors[p + 'attn_k.weight'] = tensor(b.attnK);
    tensors[p + 'attn_v.weight'] = tensor(b.attnV);
    tensors[p + 'attn_output.weight'] = tensor(b.attnOutput);
    tensors[p + 'ffn_norm.weight'] = tensor(b.ffnNorm);
    tensors[p + 'ffn_gate.weight'] = tensor(b.ffnGate);
    tensors[p + 'ffn_up.weight'] = tensor(b.ffnUp);
    tensors[p + 'ffn_down.weight'] = tensor(b.ffnDown);
  });
  return {
    path: text.path,
    config: {
      nLayers: text.blockCount,
      hidden: text.hiddenSize,
      nHeads: text.headCount,
      nKvHeads: text.headCountKv,
      headDim: text.keyLength,
      ffn: text.feedForwardLength,
      vocab: text.vocabSize,
      context: text.contextLength,
      eps: text.rmsNormEps,
      ropeTheta: text.ropeTheta,
    },
    tensors,
  };
}

export function visionSpec(p: ProjectorFile): NativeVisionSpec {
  const tensors: Record<string, NativeTensor> = {};
  const put = (name: string, wb: WeightBias) => {
    tensors[`${name}.weight`] = tensor(wb.weight);
    tensors[`${name}.bias`] = tensor(wb.bias);
  };
  put('v.patch_embd', p.tensors.patchEmbd);
  tensors['v.position_embd.weight'] = tensor(p.tensors.positionEmbd);
  p.tensors.blocks.forEach((b, i) => {
    const pre = `v.blk.${i}.`;
    put(pre + 'ln1', b.ln1);
    put(pre + 'attn_q', b.attnQ);
    put(pre + 'attn_k', b.attnK);
    put(pre + 'attn_v', b.attnV);
    put(pre + 'attn_out', b.attnOut);
    put(pre + 'ln2', b.ln2);
    put(pre + 'ffn_up', b.ffnUp); // fc1, whatever the file calls it
    put(pre + 'ffn_down', b.ffnDown); // fc2
  });
  put('v.post_ln', p.tensors.postLn);
  put('mm.0', p.tensors.projector);
  return {
    path: p.path,
    config: {
      imageSize: p.imageSize,
      patchSize: p.patchSize,
      hidden: p.hiddenSize,
      nHeads: p.headCount,
      ffn: p.feedForwardLength,
      nLayers: p.blockCount,
      projectionDim: p.projectionDim,
      eps: p.layerNormEps,
    },
    tensors,
  };
}
