/**
 * A strict unknown-key walk of manifests against their published types:
 * the TypeScript checker loads kubernetes-models' declarations (generated
 * from Kubernetes' OpenAPI) and Tessera's LeaderWorkerSet interface, and
 * every key of a manifest, at every depth, must be a property of the type
 * at that place (or fall under a map's index signature); every scalar must
 * be of the property's type, string literal enums included. The models'
 * own validators accept unknown keys (Kubernetes drops them silently,
 * which is how a misspelt field ships); this walk does not.
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import ts from 'typescript';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ROOTS_FILE = join(ROOT, 'src', 'deploy', '__manifest_roots__.ts');
const ROOTS_SOURCE = `
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IService } from 'kubernetes-models/v1/Service';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { LeaderWorkerSet } from './leader-worker-set.js';
export interface Roots { Deployment: IDeployment; Service: IService; NetworkPolicy: INetworkPolicy; LeaderWorkerSet: LeaderWorkerSet }
`;

interface Walker {
  checker: ts.TypeChecker;
  roots: Map<string, ts.Type>;
}

let walker: Walker | undefined;

function load(): Walker {
  const options: ts.CompilerOptions = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, skipLibCheck: true, noEmit: true, types: [] };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (file) => file === ROOTS_FILE || fileExists.call(host, file);
  host.readFile = (file) => (file === ROOTS_FILE ? ROOTS_SOURCE : readFile.call(host, file));
  host.getSourceFile = (file, language, ...rest) => (file === ROOTS_FILE ? ts.createSourceFile(file, ROOTS_SOURCE, language) : getSourceFile.call(host, file, language, ...rest));
  const program = ts.createProgram([ROOTS_FILE], options, host);
  const problems = ts.getPreEmitDiagnostics(program).filter((diagnostic) => diagnostic.file?.fileName === ROOTS_FILE);
  if (problems.length > 0) throw new Error(`manifest types do not load: ${ts.flattenDiagnosticMessageText(problems[0]!.messageText, '\n')}`);
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(ROOTS_FILE)!;
  const declaration = source.statements.find(ts.isInterfaceDeclaration)!;
  const rootsType = checker.getTypeAtLocation(declaration);
  const roots = new Map(rootsType.getProperties().map((symbol) => [symbol.name, checker.getTypeOfSymbol(symbol)]));
  return { checker, roots };
}

/** The members of a union other than undefined and null; a non-union as itself. */
function members(type: ts.Type): ts.Type[] {
  const all = type.isUnion() ? type.types : [type];
  return all.filter((member) => !(member.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)));
}

function scalarFits(type: ts.Type, value: string | number | boolean): boolean {
  return members(type).some((member) => {
    if (member.flags & ts.TypeFlags.Any || member.flags & ts.TypeFlags.Unknown) return true;
    if (typeof value === 'string') return member.flags & ts.TypeFlags.String ? true : member.isStringLiteral() && member.value === value;
    if (typeof value === 'number') return member.flags & ts.TypeFlags.Number ? true : member.isNumberLiteral() && member.value === value;
    return (member.flags & ts.TypeFlags.BooleanLike) !== 0;
  });
}

function walkObject(w: Walker, type: ts.Type, value: object, path: string): string[] {
  const index = w.checker.getIndexInfoOfType(type, ts.IndexKind.String);
  const problems: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    if (child === undefined) continue;
    const property = type.getProperty(key);
    const childType = property ? w.checker.getTypeOfSymbol(property) : index?.type;
    if (!childType) problems.push(`${path}/${key}: unknown key`);
    else problems.push(...walk(w, childType, child, `${path}/${key}`));
  }
  for (const property of type.getProperties()) {
    const optional = (property.flags & ts.SymbolFlags.Optional) !== 0;
    if (!optional && (value as Record<string, unknown>)[property.name] === undefined) problems.push(`${path}/${property.name}: required, missing`);
  }
  return problems;
}

function walk(w: Walker, type: ts.Type, value: unknown, path: string): string[] {
  if (value === null) return members(type).length < (type.isUnion() ? type.types.length : 1) ? [] : [`${path}: null where ${w.checker.typeToString(type)} is expected`];
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return scalarFits(type, value) ? [] : [`${path}: ${JSON.stringify(value)} is not ${w.checker.typeToString(type)}`];
  }
  if (typeof value !== 'object') return [`${path}: a ${typeof value} is no manifest value`];
  const candidates = members(type).filter((member) => (Array.isArray(value) ? w.checker.isArrayType(member) : !w.checker.isArrayType(member) && (member.flags & ts.TypeFlags.Object) !== 0));
  if (candidates.length === 0) return [`${path}: ${Array.isArray(value) ? 'a list' : 'a map'} where ${w.checker.typeToString(type)} is expected`];
  // A union of object types fits when one member takes the value whole.
  let best: string[] | undefined;
  for (const candidate of candidates) {
    const problems = Array.isArray(value)
      ? value.flatMap((item: unknown, at) => walk(w, w.checker.getTypeArguments(candidate as ts.TypeReference)[0]!, item, `${path}/${at}`))
      : walkObject(w, candidate, value, path);
    if (problems.length === 0) return [];
    if (!best || problems.length < best.length) best = problems;
  }
  return best!;
}

/** Every key and value of `manifest` that its kind's type does not allow. */
export function typeWalkProblems(manifest: { kind?: string }): string[] {
  walker ??= load();
  const type = walker.roots.get(manifest.kind ?? '');
  if (!type) return [`kind ${manifest.kind}: no type to check it against`];
  return walk(walker, type, manifest, `${manifest.kind}`);
}
