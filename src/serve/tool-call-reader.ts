/**
 * Reads tool calls out of a reply as it streams, in the formats chat
 * templates teach models:
 *   Hermes / Qwen 2.5 and 3:  <tool_call>{"name": …, "arguments": {…}}</tool_call> (one block per call)
 *   Mistral:                 [TOOL_CALLS][{"name": …, "arguments": {…}}, …]  or  [TOOL_CALLS]name[ARGS]{…}
 *   Llama 3.1+:              <|python_tag|>{"name": …, "parameters": {…}}, or that JSON as the whole reply
 * Text before a call marker streams as content at once, holding back only
 * what could be the start of a marker; a reply that opens with JSON is held
 * to the end (it may be a Llama call). A call whose name is not a tool, or
 * whose JSON does not parse, makes the held text plain content again, as
 * vLLM's parsers do. Fed the same deltas, the stream and the whole reply
 * agree by construction: both go through this one reader.
 */

export interface ParsedToolCall {
  name: string;
  /** The arguments as JSON text (OpenAI's wire form). */
  arguments: string;
}

export interface ReaderResult {
  /** Content not yet returned by push. */
  content: string;
  calls: ParsedToolCall[];
}

const MARKERS = ['<tool_call>', '[TOOL_CALLS]', '<|python_tag|>'];

export class ToolCallReader {
  private held = '';
  private calls: string | undefined;
  private started = false;
  private json = false;

  constructor(private readonly toolNames: ReadonlySet<string>) {}

  /** Content that is safe to show now. */
  push(text: string): string {
    if (this.calls !== undefined) {
      this.calls += text;
      return '';
    }
    this.held += text;
    const at = firstMarker(this.held);
    if (at >= 0) {
      const before = this.held.slice(0, at);
      this.calls = this.held.slice(at);
      this.held = '';
      return this.started || before.trim() !== '' ? before : '';
    }
    if (this.json) return '';
    if (!this.started) {
      const trimmed = this.held.trimStart();
      if (trimmed === '') return '';
      if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
        this.json = true;
        return '';
      }
      this.started = true;
    }
    const keep = markerPrefixLength(this.held);
    const out = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return out;
  }

  /** The rest: calls if the held text holds valid ones, else the held text as content. */
  finish(): ReaderResult {
    const held = this.calls ?? this.held;
    const calls = held.trim() === '' ? undefined : parseCalls(held, this.toolNames);
    if (calls && (this.calls !== undefined || this.json)) return { content: '', calls };
    return { content: held, calls: [] };
  }
}

function firstMarker(text: string): number {
  let first = -1;
  for (const marker of MARKERS) {
    const at = text.indexOf(marker);
    if (at >= 0 && (first < 0 || at < first)) first = at;
  }
  return first;
}

/** Length of the longest end of `text` that a marker starts with. */
function markerPrefixLength(text: string): number {
  let longest = 0;
  for (const marker of MARKERS) {
    for (let length = Math.min(marker.length - 1, text.length); length > longest; length--) {
      if (text.endsWith(marker.slice(0, length))) longest = length;
    }
  }
  return longest;
}

/** Calls in any of the formats, or undefined when the text is not a well-formed list of calls to known tools. */
export function parseCalls(text: string, toolNames: ReadonlySet<string>): ParsedToolCall[] | undefined {
  const trimmed = text.trim();
  let objects: unknown[] | undefined;
  if (trimmed.startsWith('<tool_call>')) objects = hermesObjects(trimmed);
  else if (trimmed.startsWith('[TOOL_CALLS]')) objects = mistralObjects(trimmed.slice('[TOOL_CALLS]'.length));
  else objects = jsonObjects(trimmed.startsWith('<|python_tag|>') ? trimmed.slice('<|python_tag|>'.length) : trimmed);
  if (!objects || objects.length === 0) return undefined;
  const calls = objects.map((object) => callOf(object, toolNames));
  return calls.every((call): call is ParsedToolCall => call !== undefined) ? calls : undefined;
}

function hermesObjects(text: string): unknown[] | undefined {
  const blocks = text.split('<tool_call>').slice(1);
  const objects: unknown[] = [];
  for (const block of blocks) {
    const end = block.indexOf('</tool_call>');
    const body = end < 0 ? block : block.slice(0, end);
    if (end >= 0 && block.slice(end + '</tool_call>'.length).trim() !== '') return undefined;
    const parsed = parseJson(body);
    if (parsed === undefined) return undefined;
    objects.push(parsed);
  }
  return objects;
}

function mistralObjects(text: string): unknown[] | undefined {
  const whole = jsonObjects(text);
  if (whole) return whole;
  // Newer Mistral templates: name[ARGS]{...}, repeated with [TOOL_CALLS] between calls.
  const objects: unknown[] = [];
  for (const part of text.split('[TOOL_CALLS]')) {
    const at = part.indexOf('[ARGS]');
    if (at < 0) return undefined;
    const args = parseJson(part.slice(at + '[ARGS]'.length));
    if (args === undefined) return undefined;
    objects.push({ name: part.slice(0, at).trim(), arguments: args });
  }
  return objects;
}

/** A JSON call object, a list of them, or objects separated by ";" or newlines. */
function jsonObjects(text: string): unknown[] | undefined {
  const whole = parseJson(text);
  if (whole !== undefined) return Array.isArray(whole) ? whole : [whole];
  const parts = text.split(/;\s*|\n+/).filter((part) => part.trim() !== '');
  const objects = parts.map(parseJson);
  return parts.length > 1 && objects.every((object) => object !== undefined) ? objects : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text.trim()) as unknown;
  } catch {
    return undefined;
  }
}

function callOf(object: unknown, toolNames: ReadonlySet<string>): ParsedToolCall | undefined {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) return undefined;
  const { name, arguments: args, parameters } = object as { name?: unknown; arguments?: unknown; parameters?: unknown };
  if (typeof name !== 'string' || !toolNames.has(name)) return undefined;
  const value = args ?? parameters ?? {};
  if (typeof value === 'string') return parseJson(value) === undefined ? undefined : { name, arguments: value };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return { name, arguments: JSON.stringify(value) };
}
