/**
 * Putting tools into a chat prompt. A template that knows tools (Llama
 * 3.1+, Qwen 2.5/3, Mistral, Hermes…: it reads `tools`) gets them as
 * `tools`, and past calls and results in the shape Hugging Face templates
 * read (assistant `tool_calls` with arguments as objects, `tool` turns with
 * `tool_call_id`). A template that does not gets a system message that
 * describes the tools and asks for Hermes-style `<tool_call>` blocks, and
 * past calls and results written the same way as plain text.
 */
import type { ChatMessage, ChatToolCall } from '../tokenizer/chat-template.js';
import type { ToolFunction } from './tool-request.js';

export interface ToolPrompt {
  messages: ChatMessage[];
  /** For the template's `tools`; undefined when the template does not read them. */
  tools?: unknown[];
}

/** Whether a chat template renders `tools` itself. */
export function templateKnowsTools(template: string): boolean {
  return /\btools\b/.test(template);
}

export function toolPrompt(template: string, messages: readonly ChatMessage[], tools: readonly ToolFunction[]): ToolPrompt {
  const definitions = tools.map((tool) => ({ type: 'function', function: { name: tool.name, description: tool.description ?? '', parameters: tool.parameters ?? { type: 'object', properties: {} } } }));
  if (templateKnowsTools(template)) return { messages: [...messages], tools: definitions };
  const instructions = toolInstructions(definitions);
  const plain = messages.map(asPlainText);
  if (plain[0]?.role === 'system') return { messages: [{ role: 'system', content: `${plain[0].content}\n\n${instructions}` }, ...plain.slice(1)] };
  return { messages: [{ role: 'system', content: instructions }, ...plain] };
}

function toolInstructions(definitions: unknown[]): string {
  return [
    'You can call functions. To call one, answer with a block',
    '<tool_call>',
    '{"name": "<function name>", "arguments": <the arguments as a JSON object>}',
    '</tool_call>',
    'per call and nothing else. The functions, with a JSON schema of their arguments:',
    ...definitions.map((definition) => JSON.stringify(definition)),
  ].join('\n');
}

/** A past call or tool result as text a plain template can show. */
function asPlainText(message: ChatMessage): ChatMessage {
  if (message.role === 'tool') return { role: 'user', content: `<tool_response>\n${message.content}\n</tool_response>` };
  if (!message.tool_calls?.length) return message;
  const calls = message.tool_calls.map((call) => `<tool_call>\n${JSON.stringify({ name: call.function.name, arguments: call.function.arguments })}\n</tool_call>`);
  return { role: message.role, content: [message.content, ...calls].filter((part) => part !== '').join('\n') };
}

/** OpenAI's arguments are a JSON string; templates want the object (vLLM does the same). */
export function templateToolCall(id: string, name: string, argumentsText: string): ChatToolCall {
  let parsed: unknown = argumentsText;
  try {
    parsed = JSON.parse(argumentsText);
  } catch {
    // Not JSON: the template gets the text as the client sent it.
  }
  return { id, type: 'function', function: { name, arguments: parsed } };
}
