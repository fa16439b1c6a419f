/**
 * `tools`, `tool_choice` and `parallel_tool_calls` of a chat request, and
 * the output constraint they imply: with `required` the reply is a JSON
 * list of calls `[{"name": ..., "arguments": {...}}]` (one call when
 * parallel_tool_calls is false), with a named function it is that
 * function's arguments object; either way the call always parses and its
 * arguments validate against the function's parameters. `auto` leaves the
 * model free and the reply is parsed for the template's tool-call format;
 * `none` renders no tools at all.
 */
import type { Constraint } from '../grammar/constraint.js';
import { badField } from './api-error.js';
import { RequestFields } from './request-fields.js';
import { checkConstraint } from './response-format.js';

export interface ToolFunction {
  name: string;
  description?: string;
  /** JSON schema of the arguments object. */
  parameters?: unknown;
}

export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

export interface ToolSpec {
  tools: ToolFunction[];
  choice: ToolChoice;
  parallel: boolean;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const CHOICES = ['auto', 'none', 'required'];
/** A function without parameters takes the empty object. */
const NO_ARGUMENTS = { type: 'object', properties: {}, additionalProperties: false };

export function parseTools(fields: RequestFields): ToolSpec | undefined {
  const list = fields.raw('tools');
  const choiceValue = fields.raw('tool_choice');
  const parallel = fields.boolean('parallel_tool_calls') ?? true;
  if (list === undefined) {
    if (choiceValue !== undefined && choiceValue !== 'none') throw badField('tool_choice', 'tool_choice needs tools');
    return undefined;
  }
  if (!Array.isArray(list)) throw badField('tools', 'tools must be a list of {"type": "function", "function": {...}}');
  const tools = list.map((item, index) => parseTool(item, index));
  const names = new Set<string>();
  for (const tool of tools) {
    if (names.has(tool.name)) throw badField('tools', `two tools are named "${tool.name}"`);
    names.add(tool.name);
  }
  const choice = parseChoice(choiceValue, names);
  return { tools, choice, parallel };
}

function parseTool(item: unknown, index: number): ToolFunction {
  const param = `tools[${index}]`;
  if (typeof item !== 'object' || item === null || Array.isArray(item)) throw badField(param, `${param} must be {"type": "function", "function": {...}}`);
  const tool = RequestFields.within(item as Record<string, unknown>, `${param}.`);
  if (tool.requiredString('type') !== 'function') throw badField(`${param}.type`, `${param}.type must be "function"; only function tools are supported`);
  const fn = tool.object('function');
  if (!fn) throw badField(`${param}.function`, `${param}.function is required`);
  const name = fn.requiredString('name');
  if (!NAME.test(name)) throw badField(`${param}.function.name`, `${param}.function.name must be 1-64 letters, digits, _ or -`);
  const description = fn.string('description');
  fn.boolean('strict');
  const parameters = fn.raw('parameters');
  if (parameters !== undefined && (typeof parameters !== 'object' || Array.isArray(parameters))) throw badField(`${param}.function.parameters`, `${param}.function.parameters must be a JSON schema object`);
  tool.rejectUnread();
  return { name, description, parameters };
}

function parseChoice(value: unknown, names: ReadonlySet<string>): ToolChoice {
  if (value === undefined) return 'auto';
  if (typeof value === 'string') {
    if (!CHOICES.includes(value)) throw badField('tool_choice', `tool_choice must be one of ${CHOICES.join(', ')} or {"type": "function", "function": {"name": ...}}`);
    return value as ToolChoice;
  }
  const name = (value as { function?: { name?: unknown } } | null)?.function?.name;
  if ((value as { type?: unknown }).type !== 'function' || typeof name !== 'string') throw badField('tool_choice', 'tool_choice must name a function as {"type": "function", "function": {"name": ...}}');
  if (!names.has(name)) throw badField('tool_choice', `tool_choice names "${name}", which is not among the tools`);
  return { name };
}

/** The output constraint of `required` or a named function (undefined for auto and none). */
export function toolConstraint(spec: ToolSpec): Constraint | undefined {
  const parameters = (tool: ToolFunction): unknown => tool.parameters ?? NO_ARGUMENTS;
  if (typeof spec.choice === 'object') {
    const name = spec.choice.name;
    const tool = spec.tools.find((candidate) => candidate.name === name)!;
    return checkConstraint({ type: 'json_schema', schema: parameters(tool) }, `tools.${name}.parameters`);
  }
  if (spec.choice !== 'required') return undefined;
  const call = (tool: ToolFunction): unknown => ({
    type: 'object',
    properties: { name: { const: tool.name }, arguments: parameters(tool) },
    required: ['name', 'arguments'],
    additionalProperties: false,
  });
  const schema = { type: 'array', items: { anyOf: spec.tools.map(call) }, minItems: 1, ...(spec.parallel ? {} : { maxItems: 1 }) };
  return checkConstraint({ type: 'json_schema', schema }, 'tools');
}
