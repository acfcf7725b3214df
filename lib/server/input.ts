/**
 * From an API request to a model call: strict base64 and data-URL images, request fields read with
 * messages that name the field, PaliGemma's prompt from chat text, and the one turn PaliGemma
 * answers. Shared by the Ollama and OpenAI routes; every failure is a 400 that says what to change.
 */
import { HttpError } from './http.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL = /^data:([^;,]*)((?:;[^;,]*)*?);base64,/i;

/** Decodes standard base64 (padding required, whitespace ignored); `what` names the field in errors. */
export function decodeBase64(value: unknown, what: string): Buffer {
  if (typeof value !== 'string') throw new HttpError(400, `${what} must be a base64 string, got ${typeName(value)}`);
  const text = value.replace(/\s+/g, '');
  if (text === '') throw new HttpError(400, `${what} is empty`);
  if (text.length % 4 !== 0 || !BASE64.test(text))
    throw new HttpError(400, `${what} is not valid base64 (standard alphabet A-Z a-z 0-9 + /, padded with = to a multiple of 4 characters)`);
  return Buffer.from(text, 'base64');
}

/** An image given as base64, or as a `data:` URL with base64 content. */
export function decodeImage(value: unknown, what: string): Buffer {
  if (typeof value === 'string') {
    const m = DATA_URL.exec(value);
    if (m) return decodeBase64(value.slice(m[0].length), what);
    if (/^data:/i.test(value)) throw new HttpError(400, `${what} is a data: URL without ;base64 content; encode the image in base64`);
  }
  return decodeBase64(value, what);
}

/** An image URL of an OpenAI content part: only `data:` URLs; remote images are not fetched. */
export function decodeImageUrl(url: unknown, what: string): Buffer {
  if (typeof url !== 'string') throw new HttpError(400, `${what} must be a string, got ${typeName(url)}`);
  if (!/^data:/i.test(url))
    throw new HttpError(400, `${what} must be a data: URL (data:image/png;base64,…); this server does not fetch remote images`);
  return decodeImage(url, what);
}

export function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/** Field readers: undefined (or null, which OpenAI clients send for "unset") means absent. */
export const field = {
  string(obj: Record<string, unknown>, key: string, path = key): string | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new HttpError(400, `${path} must be a string, got ${typeName(v)}`);
    return v;
  },

  boolean(obj: Record<string, unknown>, key: string, path = key): boolean | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw new HttpError(400, `${path} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  },

  number(
    obj: Record<string, unknown>,
    key: string,
    range: { min?: number; max?: number; integer?: boolean },
    path = key,
  ): number | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    const kind = range.integer ? 'an integer' : 'a number';
    const bounds = [range.min !== undefined ? `≥ ${range.min}` : '', range.max !== undefined ? `≤ ${range.max}` : ''].filter(Boolean).join(' and ');
    const ok =
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (!range.integer || Number.isSafeInteger(v)) &&
      (range.min === undefined || v >= range.min) &&
      (range.max === undefined || v <= range.max);
    if (!ok) throw new HttpError(400, `${path} must be ${kind}${bounds ? ` ${bounds}` : ''}, got ${JSON.stringify(v)}`);
    return v;
  },

  object(obj: Record<string, unknown>, key: string, path = key): Record<string, unknown> | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, `${path} must be an object, got ${typeName(v)}`);
    return v as Record<string, unknown>;
  },

  array(obj: Record<string, unknown>, key: string, path = key): unknown[] | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) throw new HttpError(400, `${path} must be an array, got ${typeName(v)}`);
    return v;
  },

  /** Stop sequences: a string or an array of at most `max` strings. */
  stops(obj: Record<string, unknown>, key: string, path = key, max = 16): string[] {
    const v = obj[key];
    if (v === undefined || v === null) return [];
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || list.some((s) => typeof s !== 'string'))
      throw new HttpError(400, `${path} must be a string or an array of strings, got ${JSON.stringify(v)}`);
    if (list.length > max) throw new HttpError(400, `${path} takes at most ${max} stop sequences, got ${list.length}`);
    return list as string[];
  },
};

/** Refuses a request field this server cannot honour, saying why, when it is set to something. */
export function refuse(obj: Record<string, unknown>, key: string, why: string): void {
  const v = obj[key];
  const set = v !== undefined && v !== null && v !== false && v !== '' && !(Array.isArray(v) && v.length === 0);
  if (set) throw new HttpError(400, `${key} is not supported: ${why}`);
}

/**
 * PaliGemma's task prefixes (lib/tasks/prompts.ts): text that already is one goes to the model as
 * it is; anything else is a question about the image, asked as `answer en <text>`; empty text asks
 * for a caption. `raw` (Ollama's flag for "no template") sends the text unchanged.
 */
const TASK_PROMPT = new RegExp(
  [
    '^(?:caption|describe|cap) [a-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$',
    '^ocr$',
    '^(?:answer|question) [a-z]{2,3}(?:-[A-Za-z0-9]{1,8})* \\S',
    '^(?:detect|segment) \\S',
  ].join('|'),
);

export function paligemmaPrompt(text: string, raw = false): string {
  if (raw) return text;
  const t = text.replace(/\s+/g, ' ').trim();
  if (t === '') return 'caption en';
  return TASK_PROMPT.test(t) ? t : `answer en ${t}`;
}

/** A chat message reduced to what PaliGemma can use; images still encoded, as the API sent them. */
export interface ChatMessage {
  role: string;
  text: string;
  images: unknown[];
  /** Where the message is in the request, for errors: `messages[2]`. */
  where: string;
}

/**
 * `messages` of a chat request: each an object with a `role`; `content` reads the text and images
 * of one message in the API's own way.
 */
export function chatMessages(
  body: Record<string, unknown>,
  content: (msg: Record<string, unknown>, where: string) => { text: string; images: unknown[] },
): ChatMessage[] {
  const list = field.array(body, 'messages');
  if (list === undefined) throw new HttpError(400, 'messages is required');
  return list.map((m, i) => {
    const where = `messages[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new HttpError(400, `${where} must be an object, got ${typeName(m)}`);
    const msg = m as Record<string, unknown>;
    const role = field.string(msg, 'role', `${where}.role`);
    if (role === undefined) throw new HttpError(400, `${where}.role is required`);
    return { role, ...content(msg, where), where };
  });
}

/**
 * The one turn PaliGemma answers: the text of the last message, which must be the user's, and its
 * image — or, when it has none, the latest image of an earlier user message, so that follow-up
 * questions about an image work in chat clients that send the whole history. Earlier turns and
 * system messages are otherwise not seen by the model (it has no chat template). Only the image
 * used is decoded, with `decode`.
 */
export function chatTurn(messages: ChatMessage[], decode: (image: unknown, what: string) => Buffer): { text: string; image: Buffer } {
  const last = messages[messages.length - 1]!;
  if (last.role !== 'user')
    throw new HttpError(400, `the last message must be the user's (PaliGemma answers one user turn about an image), got role ${JSON.stringify(last.role)}`);
  let withImage: ChatMessage | undefined;
  for (const m of messages) if (m.role === 'user' && m.images.length > 0) withImage = m;
  if (!withImage) throw new HttpError(400, 'PaliGemma answers questions about an image: attach one image to the last user message');
  if (withImage.images.length > 1)
    throw new HttpError(400, `PaliGemma sees one image per prompt; ${withImage.where} has ${withImage.images.length} images`);
  return { text: last.text, image: decode(withImage.images[0], `${withImage.where}'s image`) };
}
