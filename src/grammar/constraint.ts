/**
 * What a request asks its output to be, as plain data: it travels inside a
 * SequenceRequest (to the engine worker, and from a router to a replica over
 * HTTP) and is compiled where it is used. The same constraint always
 * compiles to the same grammar.
 */
import { TesseraError } from '../core/errors.js';
import { lowerGrammar, type FlatGrammar } from './grammar-lowering.js';
import { grammarOf, type Grammar } from './grammar.js';
import { parseGbnf } from './gbnf-syntax.js';
import { jsonValueRules } from './json-text.js';
import { jsonSchemaGrammar } from './json-schema-grammar.js';
import { parseRegex } from './regex-syntax.js';

export type Constraint =
  /** Any JSON object. */
  | { readonly type: 'json_object' }
  /** JSON that validates against the schema. */
  | { readonly type: 'json_schema'; readonly schema: unknown }
  /** Text the whole of which matches the regular expression. */
  | { readonly type: 'regex'; readonly pattern: string }
  /** Text the GBNF grammar's root rule derives. */
  | { readonly type: 'grammar'; readonly grammar: string };

export function constraintGrammar(constraint: Constraint): Grammar {
  switch (constraint.type) {
    case 'json_object':
      return grammarOf([['root', { kind: 'ref', name: 'json-object' }], ...jsonValueRules()]);
    case 'json_schema':
      return jsonSchemaGrammar(constraint.schema);
    case 'regex':
      return grammarOf([['root', parseRegex(constraint.pattern).node]]);
    case 'grammar':
      return parseGbnf(constraint.grammar);
    default:
      throw new TesseraError('TESSERA_ERR_GRAMMAR', `unknown constraint type ${JSON.stringify((constraint as { type?: unknown }).type)}`);
  }
}

/** Parses, checks and lowers a constraint; throws TESSERA_ERR_GRAMMAR with what is wrong. */
export function compileConstraint(constraint: Constraint): FlatGrammar {
  return lowerGrammar(constraintGrammar(constraint));
}

/** A stable key for caches: equal constraints give equal keys. */
export function constraintKey(constraint: Constraint): string {
  return JSON.stringify(constraint);
}
