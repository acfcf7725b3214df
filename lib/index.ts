/**
 * paligemma — run Google's PaliGemma vision-language model locally from GGUF files.
 * This module is the public API and nothing else.
 */

// The model
export { loadModel, PaliGemma } from './model/paligemma.js';
export type {
  LoadModelOptions,
  LoadProgress,
  DescribeItem,
  DescribeManyOptions,
  ModelImage,
  DescribeOptions,
  GenerationOptions,
  GenerationResult,
  GenerateInput,
  EvaluateInput,
  Evaluation,
  TaskOptions,
  Timings,
  SchedulerLoad,
} from './model/paligemma.js';
export { PaliGemmaError, isPaliGemmaError } from './errors.js';
export type { PaliGemmaErrorCode } from './errors.js';
export type { SamplingOptions } from './model/sampling.js';
export { locateModelFiles, ModelFilesError } from './model/files.js';
export type { ModelFiles, ModelFilesOptions, TextModelFile, ProjectorFile, ModelFilesErrorCode } from './model/files.js';

// Tasks: prompts and parsers usable on text from any source
export {
  captionPrompt,
  ocrPrompt,
  answerPrompt,
  detectPrompt,
  segmentPrompt,
  parseDetections,
  parseSegmentation,
  SegmentationDecoder,
  maskForBox,
  readNpz,
  NpzError,
  TaskError,
} from './tasks/index.js';
export type {
  Box,
  Detection,
  DetectionParse,
  SegmentationParse,
  SegmentedObject,
  SegmentMask,
  SkippedObject,
  CaptionDetail,
  CaptionOptions,
  TaskErrorCode,
} from './tasks/index.js';

// Images
export { preprocess, decodeImage, ImageError, DEFAULT_MAX_PIXELS } from './image/index.js';
export type { ImageInput, RawPixels, RgbImage, PreprocessOptions, PreprocessedImage, ImageErrorCode } from './image/index.js';
export { MAX_IMAGE_BYTES } from './image/index.js';

// File formats
export { readGGUF, writeGGUF, GGUFError } from './gguf/index.js';
export type * from './gguf/index.js';
export {
  getValue,
  getString,
  getBool,
  getNumber,
  getInteger,
  getBigInt,
  getArray,
} from './gguf/metadata.js';
export { convertCheckpoint, ConvertError, SafetensorsError, OUT_TYPES } from './convert/index.js';
export type { ConvertOptions, ConvertProgress, ConvertResult, OutType, ConvertErrorCode, SafetensorsErrorCode } from './convert/index.js';
export { quantizeModel, QuantizeError, QUANT_MIXES } from './quant/index.js';
export type { QuantizeOptions, QuantizeProgress, QuantizeResult, QuantizedTensor, QuantMix, QuantizeErrorCode } from './quant/index.js';
export { resolveOllamaModel, parseOllamaName, ollamaModelsDir, OllamaError } from './ollama/index.js';
export type { OllamaModelFiles, OllamaModelRef, OllamaErrorCode } from './ollama/index.js';

// Getting models: the Ollama registry, or Hugging Face + conversion
export { pullModel, PullError, defaultModelsDir } from './pull/index.js';
export type { PullOptions, PullProgress, PullResult, PullErrorCode } from './pull/index.js';

// Option checking
export { OptionError } from './options.js';

// Tokenizer
export { Tokenizer, TokenizerError, TokenType } from './tokenizer/index.js';
export type { TokenizerConfig, EncodeOptions, DecodeOptions, StreamDecoder, TokenizerErrorCode, VocabTable } from './tokenizer/index.js';

// Serving: Ollama's and OpenAI's HTTP APIs, and BullMQ queue workers (bullmq is an optional peer dependency)
export { createServer } from './server/index.js';
export type { ServerOptions, PaliGemmaServer, AccessLogEntry, ServedModel, TaskResult, SegmentResult } from './server/index.js';
export { runWorker, enqueueDescribe, DESCRIBE_JOB, JobDataError, MissingDependencyError } from './worker/index.js';
export type {
  WorkerOptions,
  WorkerLogEntry,
  QueueWorker,
  DescribeJobInput,
  DescribeJobData,
  DescribeJobOptions,
  DescribeJobResult,
  QueueLike,
} from './worker/index.js';

// Runtime
export { cpuFeatures, simdVariant, simdVariants, SimdError, NativeAddonError } from './native.js';
export type { CpuFeatures, SimdVariantName, SimdVariantInfo, SimdErrorCode, NativeAddonErrorCode } from './native.js';
