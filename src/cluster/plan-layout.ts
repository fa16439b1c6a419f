/**
 * A rank's check of a plan's layout against its own view before it connects
 * or loads anything: the mesh size agrees with tp × pp and with what
 * `prepare` said, its rank is inside it, the stages' layer ranges tile the
 * model's layers in order, and the expert degree is one the loaders know.
 * Schemas bound each number; this checks how they fit together.
 */
import { TesseraError } from '../core/errors.js';
import type { ModelConfig } from '../core/model-config.js';
import type { ControlMessage } from './control-message.js';

type Plan = Extract<ControlMessage, { type: 'plan' }>;

function refuse(message: string): never {
  throw new TesseraError('TESSERA_ERR_LAYOUT_MISMATCH', `the coordinator's plan does not fit: ${message}; are the coordinator and worker the same version, with the same model?`);
}

/** The parts of a plan that need no model: sizes and this rank's place. */
export function checkPlanShape(plan: Plan, rank: number, size: number): void {
  const ranks = plan.tp * plan.pp;
  if (plan.addresses.length !== ranks) refuse(`${plan.addresses.length} addresses for tp ${plan.tp} × pp ${plan.pp}`);
  if (ranks !== size) refuse(`a mesh of ${ranks} ranks, but this rank was prepared for ${size}`);
  if (rank >= size) refuse(`rank ${rank} in a mesh of ${size}`);
  if (plan.layers.length !== plan.pp) refuse(`${plan.layers.length} layer ranges for ${plan.pp} stages`);
  const ep = plan.ep ?? 1;
  if (ep !== 1 && ep !== plan.tp) refuse(`expert degree ${ep} with tp ${plan.tp} (it is 1 or tp)`);
}

/** The stages' layer ranges against the model's layers. */
export function checkPlanLayers(plan: Plan, config: ModelConfig): void {
  let next = 0;
  for (const [start, end] of plan.layers) {
    if (start !== next || end <= start) refuse(`layer ranges ${JSON.stringify(plan.layers)} do not tile the layers in order`);
    next = end;
  }
  if (next !== config.numLayers) refuse(`layer ranges end at ${next}, but the model has ${config.numLayers} layers`);
}
