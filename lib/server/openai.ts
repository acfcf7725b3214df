/**
 * OpenAI's chat completions API: POST /v1/chat/completions (content parts `text` and `image_url`
 * with data URLs; `stream: true` gives server-sent `chat.completion.chunk` events and
 * `data: [DONE]`) and GET /v1/models. Errors use OpenAI's error object. Parsed detect/segment
 * results ride along in an extra `paligemma` field (of the completion, or of the last chunk).
 */
import { randomBytes } from 'node:crypto';

import { HttpError, SseStream, sendJson } from './http.js';
import { chatMessages, chatTurn, decodeImageUrl, field, paligemmaPrompt, refuse, typeName } from './input.js';
import type { Handler, RequestContext } from './context.js';

const completions: Handler = async (ctx) => {
  const body = await ctx.readJson();
  const model = ctx.modelName(body.model);
  const messages = chatMessages(body, messageContent);
  if (messages.length === 0) throw new HttpError(400, 'messages must not be empty');
  const n = field.number(body, 'n', { integer: true, min: 1 });
  if (n !== undefined && n > 1) throw new HttpError(400, `n must be 1: this server makes one completion per request, got ${n}`);
  refuse(body, 'tools', 'PaliGemma does not call tools');
  refuse(body, 'logprobs', 'this server does not report log probabilities');
  const format = field.object(body, 'response_format');
  if (format && format.type !== 'text') throw new HttpError(400, `response_format ${JSON.stringify(format.type)} is not supported: PaliGemma's output cannot be constrained`);
  const stream = field.boolean(body, 'stream') ?? false;
  const usageChunk = stream && field.boolean(field.object(body, 'stream_options') ?? {}, 'include_usage', 'stream_options.include_usage') === true;
  const options = {
    maxTokens: field.number(body, 'max_completion_tokens', { integer: true, min: 1 }) ?? field.number(body, 'max_tokens', { integer: true, min: 1 }),
    temperature: field.number(body, 'temperature', { min: 0, max: 2 }),
    topP: field.number(body, 'top_p', { min: 0, max: 1 }),
    seed: field.number(body, 'seed', { integer: true }),
    stop: field.stops(body, 'stop', 'stop', 4),
  };
  const turn = chatTurn(messages, decodeImageUrl);
  const g = { ...options, image: turn.image, prompt: paligemmaPrompt(turn.text) };

  const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  const usage = (r: { promptTokens: number; generatedTokens: number }) => ({
    prompt_tokens: r.promptTokens,
    completion_tokens: r.generatedTokens,
    total_tokens: r.promptTokens + r.generatedTokens,
  });
  if (!stream) {
    const r = await ctx.generate(g);
    sendJson(ctx.res, 200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: r.text, refusal: null }, logprobs: null, finish_reason: r.doneReason }],
      usage: usage(r),
      ...(r.task && { paligemma: r.task }),
    });
    return;
  }
  const out = (ctx.stream = new SseStream(ctx.res));
  const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(usageChunk && { usage: null }),
    ...extra,
  });
  // The role comes first, with the first text, so that nothing is sent before the model has started.
  const begin = () => {
    if (!out.started) out.write(chunk({ role: 'assistant', content: '' }, null));
  };
  const r = await ctx.generate(g, (text) => {
    begin();
    out.write(chunk({ content: text }, null));
  });
  begin();
  out.write(chunk({}, r.doneReason, r.task && { paligemma: r.task }));
  if (usageChunk) out.write({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: usage(r) });
  out.end();
};

/** An OpenAI message's content: a string, or `text` and `image_url` parts. */
function messageContent(msg: Record<string, unknown>, where: string): { text: string; images: unknown[] } {
  const content = msg.content;
  if (content === undefined || content === null || typeof content === 'string') return { text: content ?? '', images: [] };
  if (!Array.isArray(content)) throw new HttpError(400, `${where}.content must be a string or an array of content parts, got ${typeName(content)}`);
  const texts: string[] = [];
  const images: unknown[] = [];
  content.forEach((part: unknown, j) => {
    const at = `${where}.content[${j}]`;
    const p = (typeof part === 'object' && part !== null ? part : {}) as Record<string, unknown>;
    if (p.type === 'text') texts.push(field.string(p, 'text', `${at}.text`) ?? '');
    else if (p.type === 'image_url') {
      const url = p.image_url;
      images.push(typeof url === 'object' && url !== null ? (url as Record<string, unknown>).url : url);
    } else throw new HttpError(400, `${at} has type ${JSON.stringify(p.type)}; this server takes text and image_url parts`);
  });
  return { text: texts.join(' '), images };
}

function modelObject(ctx: RequestContext) {
  const d = ctx.state.description;
  return { id: d.name, object: 'model', created: Math.floor(d.modifiedAt.getTime() / 1000), owned_by: 'paligemma' };
}

const models: Handler = async (ctx) => sendJson(ctx.res, 200, { object: 'list', data: [modelObject(ctx)] });

const model: Handler = async (ctx) => {
  const raw = ctx.url.pathname.slice('/v1/models/'.length);
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, `the model name in the path is not valid percent-encoding: ${raw}`);
  }
  ctx.modelName(name);
  sendJson(ctx.res, 200, modelObject(ctx));
};

export const openaiRoutes: Record<string, Handler> = {
  'POST /v1/chat/completions': completions,
  'GET /v1/models': models,
  'GET /v1/models/*': model,
};
