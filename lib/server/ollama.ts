/**
 * Ollama's API (docs/api.md of the ollama repository): /api/generate and /api/chat with NDJSON
 * streaming, /api/tags, /api/show, /api/ps, /api/version, with Ollama's field names and its
 * durations in nanoseconds. Parsed detect/segment results ride along in an extra `paligemma`
 * field of the last chunk.
 */
import type { Generation, GenerationOutcome } from './generate.js';
import { HttpError, NdjsonStream, sendJson } from './http.js';
import { chatMessages, chatTurn, decodeImage, field, paligemmaPrompt, refuse } from './input.js';
import type { Handler, RequestContext } from './context.js';

/** Ollama's `options` that PaliGemma uses; other Modelfile parameters are accepted and ignored. */
function generationOptions(body: Record<string, unknown>): Omit<Generation, 'image' | 'prompt'> {
  const o = field.object(body, 'options') ?? {};
  const p = (key: string) => `options.${key}`;
  const numPredict = field.number(o, 'num_predict', { integer: true, min: -2 }, p('num_predict'));
  if (numPredict === 0) throw new HttpError(400, 'options.num_predict must be ≥ 1, or -1 for as many tokens as fit the context');
  return {
    // -1 (no limit) and -2 (fill the context) both mean: as many as fit.
    maxTokens: numPredict !== undefined && numPredict < 0 ? Infinity : numPredict,
    temperature: field.number(o, 'temperature', { min: 0 }, p('temperature')),
    topK: field.number(o, 'top_k', { integer: true, min: 0 }, p('top_k')),
    topP: field.number(o, 'top_p', { min: 0, max: 1 }, p('top_p')),
    seed: field.number(o, 'seed', { integer: true }, p('seed')),
    stop: field.stops(o, 'stop', p('stop')),
  };
}

/** Refuses what this server cannot honour, in both endpoints. */
function refuseUnsupported(body: Record<string, unknown>): void {
  refuse(body, 'format', "PaliGemma's output cannot be constrained to JSON");
  refuse(body, 'tools', 'PaliGemma does not call tools');
  refuse(body, 'think', 'PaliGemma does not think aloud');
}

/** The fields of the last chunk (or of the whole answer, without streaming). */
function doneFields(ctx: RequestContext, r: GenerationOutcome) {
  return {
    done_reason: r.doneReason,
    total_duration: ctx.elapsedNs(),
    load_duration: 0,
    prompt_eval_count: r.promptTokens,
    prompt_eval_duration: r.promptEvalNs,
    eval_count: r.generatedTokens,
    eval_duration: r.evalNs,
    ...(r.task && { paligemma: r.task }),
  };
}

/**
 * Runs `g` and answers: NDJSON chunks `{model, created_at, <content>, done: false}` and a last
 * chunk with `done: true` and the statistics, or one object with everything.
 */
async function answer(
  ctx: RequestContext,
  g: Generation,
  stream: boolean,
  content: (text: string) => Record<string, unknown>,
): Promise<void> {
  const model = ctx.state.description.name;
  const head = () => ({ model, created_at: new Date().toISOString() });
  if (!stream) {
    const r = await ctx.generate(g);
    sendJson(ctx.res, 200, { ...head(), ...content(r.text), done: true, ...doneFields(ctx, r) });
    return;
  }
  const out = (ctx.stream = new NdjsonStream(ctx.res));
  const r = await ctx.generate(g, (text) => out.write({ ...head(), ...content(text), done: false }));
  out.write({ ...head(), ...content(''), done: true, ...doneFields(ctx, r) });
  out.end();
}

/** The answer to a request without a prompt: Ollama loads the model (here: it is loaded). */
function loaded(ctx: RequestContext, body: Record<string, unknown>, content: Record<string, unknown>): void {
  const unload = body.keep_alive === 0 || body.keep_alive === '0';
  sendJson(ctx.res, 200, {
    model: ctx.state.description.name,
    created_at: new Date().toISOString(),
    ...content,
    done: true,
    done_reason: unload ? 'unload' : 'load',
  });
}

const generate: Handler = async (ctx) => {
  const body = await ctx.readJson();
  ctx.modelName(body.model);
  refuseUnsupported(body);
  refuse(body, 'suffix', 'PaliGemma does not fill in text before a suffix');
  refuse(body, 'context', 'PaliGemma answers one prompt at a time; send the whole prompt again');
  const prompt = field.string(body, 'prompt') ?? '';
  const images = field.array(body, 'images') ?? [];
  const stream = field.boolean(body, 'stream') ?? true;
  const raw = field.boolean(body, 'raw') ?? false;
  const options = generationOptions(body);
  if (prompt === '' && images.length === 0) return loaded(ctx, body, { response: '' });
  if (images.length === 0) throw new HttpError(400, 'PaliGemma answers prompts about an image: give one in images (base64)');
  if (images.length > 1) throw new HttpError(400, `PaliGemma sees one image per prompt; got ${images.length} images`);
  const image = decodeImage(images[0], 'images[0]');
  await answer(ctx, { ...options, image, prompt: paligemmaPrompt(prompt, raw) }, stream, (text) => ({ response: text }));
};

const chat: Handler = async (ctx) => {
  const body = await ctx.readJson();
  ctx.modelName(body.model);
  refuseUnsupported(body);
  // No messages at all, as with an empty list: Ollama's "load the model" request.
  const messages = body.messages === undefined ? [] : chatMessages(body, (msg, where) => ({
    text: field.string(msg, 'content', `${where}.content`) ?? '',
    images: field.array(msg, 'images', `${where}.images`) ?? [],
  }));
  const stream = field.boolean(body, 'stream') ?? true;
  const options = generationOptions(body);
  if (messages.length === 0) return loaded(ctx, body, { message: { role: 'assistant', content: '' } });
  const turn = chatTurn(messages, decodeImage);
  await answer(ctx, { ...options, image: turn.image, prompt: paligemmaPrompt(turn.text) }, stream, (text) => ({
    message: { role: 'assistant', content: text },
  }));
};

/** The model as the listings show it. */
function listed(ctx: RequestContext) {
  const d = ctx.state.description;
  return { name: d.name, model: d.name, modified_at: d.modifiedAt.toISOString(), size: d.size, digest: d.digest, details: d.details };
}

const tags: Handler = async (ctx) => sendJson(ctx.res, 200, { models: [listed(ctx)] });

/** A model loaded for good: it never expires. */
const NEVER = '2300-01-01T00:00:00Z';

/**
 * The loaded model: `size` is its files plus the KV cache its sequences hold now; the extra
 * `paligemma` field has the load (sequences of the model, requests of the server).
 */
const ps: Handler = async (ctx) => {
  const { modified_at: _, ...model } = listed(ctx);
  const sequences = ctx.state.model.sequences;
  const { running, waiting, kvBytes, maxKvBytes } = ctx.state.admission;
  sendJson(ctx.res, 200, {
    models: [
      {
        ...model,
        size: model.size + (sequences?.kvBytes ?? 0),
        expires_at: NEVER,
        size_vram: 0,
        paligemma: { sequences, requests: { running, waiting, kvBytes, maxKvBytes } },
      },
    ],
  });
};

const show: Handler = async (ctx) => {
  const body = await ctx.readJson();
  const name = ctx.modelName(body.model ?? body.name);
  const d = ctx.state.description;
  sendJson(ctx.res, 200, {
    license: '',
    modelfile: `# Served by paligemma\nFROM ${name}\n`,
    parameters: '',
    template: '{{ .Prompt }}',
    details: d.details,
    model_info: d.modelInfo,
    projector_info: d.projectorInfo,
    capabilities: ['completion', 'vision'],
    modified_at: d.modifiedAt.toISOString(),
  });
};

const version: Handler = async (ctx) => sendJson(ctx.res, 200, { version: ctx.state.version });

export const ollamaRoutes: Record<string, Handler> = {
  'POST /api/generate': generate,
  'POST /api/chat': chat,
  'GET /api/tags': tags,
  'POST /api/show': show,
  'GET /api/ps': ps,
  'GET /api/version': version,
};
