/**
 * Turns validated model files (lib/model/files.ts) into the spec the native model handle takes:
 * configs plus every tensor of the architecture's table (lib/model/arch/) under its canonical name,
 * the one native/model/load.cc looks up. The variants seen in the wild (projector names, swapped ffn
 * names) were resolved by files.ts.
 */
import type { GGUFTensorInfo } from '../gguf/types.js';
import type { NativeTensor, NativeTextSpec, NativeVisionSpec } from '../native.js';
import { GEMMA } from './arch/gemma.js';
import { SIGLIP } from './arch/siglip.js';
import { fieldOf, placeTensors, type TensorTable } from './arch/table.js';
import type { ProjectorFile, TextModelFile } from './files.js';

function tensor(t: GGUFTensorInfo): NativeTensor {
  return { offset: t.offset, type: t.typeId, dims: t.dims };
}

/** Every tensor of `table` in a file description's fields, by canonical name. */
function tensorsOf(table: TensorTable, fields: { blocks: readonly object[] }): Record<string, NativeTensor> {
  const tensors: Record<string, NativeTensor> = {};
  for (const { row, block, gguf } of placeTensors(table, fields.blocks.length)) {
    tensors[gguf] = tensor(fieldOf(block === undefined ? fields : fields.blocks[block]!, row));
  }
  return tensors;
}

export function textSpec(text: TextModelFile): NativeTextSpec {
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
    tensors: tensorsOf(GEMMA, text.tensors),
  };
}

export function visionSpec(p: ProjectorFile): NativeVisionSpec {
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
    tensors: tensorsOf(SIGLIP, p.tensors),
  };
}
