/**
 * One choice of a chat reply as it is produced: engine outputs in, message
 * deltas out (content and, at the end, tool calls). Streaming and whole
 * responses both feed every output through here, so they agree.
 *  - no tools: the text is the content;
 *  - tool_choice auto: a ToolCallReader splits content from calls;
 *  - required / a named function: the constrained JSON is held and becomes
 *    the calls at the end (content only if it was cut off by max_tokens).
 */
import { randomBytes } from 'node:crypto';
import type { SequenceUpdate } from './engine-host.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { ToolCallReader, type ParsedToolCall } from './tool-call-reader.js';
import type { ToolSpec } from './tool-request.js';

export interface ChoiceDelta {
  content: string;
  calls: ParsedToolCall[];
}

export interface WireToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** Special tokens that carry tool-call structure; their text joins the reply a reader sees. */
const MARKER_TOKENS = new Set(['[TOOL_CALLS]', '[ARGS]', '[CALL_ID]', '<|python_tag|>', '<tool_call>', '</tool_call>']);
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export class ChatChoice {
  private readonly reader: ToolCallReader | undefined;
  private held = '';
  private content = '';
  readonly calls: WireToolCall[] = [];

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly tools: ToolSpec | undefined,
  ) {
    const mode = tools?.choice;
    this.reader = mode === 'auto' ? new ToolCallReader(new Set(tools!.tools.map((tool) => tool.name))) : undefined;
  }

  private get constrained(): boolean {
    const mode = this.tools?.choice;
    return mode === 'required' || typeof mode === 'object';
  }

  /** What this output adds to the message. */
  push(output: SequenceUpdate): ChoiceDelta {
    let delta: ChoiceDelta;
    if (this.reader) {
      const content = this.reader.push(this.markers(output.ids) + output.text);
      const rest = output.finish ? this.reader.finish() : { content: '', calls: [] };
      delta = { content: content + rest.content, calls: rest.calls };
    } else if (this.constrained) {
      this.held += output.text;
      delta = output.finish ? this.constrainedCalls(output.finish) : { content: '', calls: [] };
    } else {
      delta = { content: output.text, calls: [] };
    }
    this.content += delta.content;
    this.calls.push(...delta.calls.map((call) => wireCall(call)));
    return delta;
  }

  /** The whole message. */
  message(): { role: 'assistant'; content: string | null; tool_calls?: WireToolCall[] } {
    if (this.calls.length === 0) return { role: 'assistant', content: this.content };
    return { role: 'assistant', content: this.content.trim() === '' ? null : this.content, tool_calls: this.calls };
  }

  /** OpenAI's finish_reason: tool_calls when the reply called tools. */
  finishReason(engineFinish: string): string {
    return this.calls.length > 0 ? 'tool_calls' : engineFinish;
  }

  /** Wire deltas for calls first seen in this output (indexes continue across outputs). */
  wireDeltas(delta: ChoiceDelta): (WireToolCall & { index: number })[] {
    const first = this.calls.length - delta.calls.length;
    return this.calls.slice(first).map((call, i) => ({ index: first + i, ...call }));
  }

  private markers(ids: readonly number[]): string {
    let text = '';
    for (const id of ids) {
      if (!this.tokenizer.isSpecial(id)) continue;
      const marker = this.tokenizer.tokenText(id);
      if (MARKER_TOKENS.has(marker)) text += marker;
    }
    return text;
  }

  /** The held JSON as calls; a reply cut short (max_tokens, or a client's stop string) stays text. */
  private constrainedCalls(finish: string): ChoiceDelta {
    const text = this.held;
    let value: unknown;
    try {
      value = finish === 'stop' ? JSON.parse(text) : undefined;
    } catch {
      value = undefined;
    }
    if (value === undefined) return { content: text, calls: [] };
    const mode = this.tools!.choice;
    if (typeof mode === 'object') return { content: '', calls: [{ name: mode.name, arguments: text.trim() }] };
    const list = value as { name: string; arguments: unknown }[];
    return { content: '', calls: list.map((call) => ({ name: call.name, arguments: JSON.stringify(call.arguments) })) };
  }
}

function wireCall(call: ParsedToolCall): WireToolCall {
  return { id: callId(), type: 'function', function: { name: call.name, arguments: call.arguments } };
}

/** Nine letters and digits: the id shape the strictest templates (Mistral's) accept back. */
function callId(): string {
  return [...randomBytes(9)].map((byte) => ID_ALPHABET[byte % ID_ALPHABET.length]).join('');
}
