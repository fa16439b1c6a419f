/**
 * Chat templates: the Jinja template a model ships (tokenizer_config
 * chat_template, GGUF tokenizer.chat_template) rendered with
 * @huggingface/jinja, the same engine transformers.js uses.
 */
import { Template } from '@huggingface/jinja';
import { TesseraError } from '../core/errors.js';

/** A call an assistant turn made, in the shape chat templates read (arguments as an object). */
export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: unknown };
}

export interface ChatMessage {
  role: string;
  content: string;
  /** Assistant turns: the tools it called. */
  tool_calls?: ChatToolCall[];
  /** Tool turns: the call this answers. */
  tool_call_id?: string;
  name?: string;
}

export interface ChatTemplateOptions {
  bosToken?: string;
  eosToken?: string;
  /** End with the opening of an assistant turn, so the model writes the reply. */
  addGenerationPrompt: boolean;
  /** Tool definitions (`{type: "function", function: {...}}`), for templates that render them. */
  tools?: readonly unknown[];
}

/**
 * ChatML (`<|im_start|>role\ncontent<|im_end|>\n`), used when a model ships no
 * template. It is what Qwen and many fine-tunes use; for a base model without
 * these tokens in its vocabulary the markers are encoded as plain text, which
 * still gives the model a readable transcript.
 */
export const FALLBACK_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Parsed templates, by text: a server renders the same template for every request. */
const parsed = new Map<string, Template>();
const MAX_CACHED_TEMPLATES = 16;

export function renderChatTemplate(template: string, messages: ChatMessage[], options: ChatTemplateOptions): string {
  const compiled = compile(template);
  try {
    return compiled.render({
      messages,
      bos_token: options.bosToken ?? '',
      eos_token: options.eosToken ?? '',
      add_generation_prompt: options.addGenerationPrompt,
      // Templates test `tools is defined` / `if tools`: the key is there only when there are tools.
      ...(options.tools ? { tools: options.tools } : {}),
    });
  } catch (error) {
    throw new TesseraError(
      'TESSERA_ERR_CHAT_TEMPLATE',
      `the chat template failed on these messages: ${(error as Error).message}; check the message roles and order the model expects, or send a plain prompt`,
      { cause: error },
    );
  }
}

function compile(template: string): Template {
  let compiled = parsed.get(template);
  if (compiled) return compiled;
  try {
    compiled = new Template(template);
  } catch (error) {
    throw new TesseraError(
      'TESSERA_ERR_CHAT_TEMPLATE',
      `the model's chat template does not parse (${(error as Error).message}); supply a corrected template or use a plain prompt`,
      { cause: error },
    );
  }
  if (parsed.size >= MAX_CACHED_TEMPLATES) parsed.delete(parsed.keys().next().value!);
  parsed.set(template, compiled);
  return compiled;
}
