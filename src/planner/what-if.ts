/**
 * `--what-if memory-bandwidth=1.5x,link-bandwidth=2x`: the plan re-run with
 * one hardware knob scaled at a time, and each metric's change — the table a
 * hardware team asks for ("what does 1.5× the bandwidth buy us?").
 */
import { TesseraError } from '../core/errors.js';
import { HARDWARE_KNOBS, scaleHardware, type HardwareKnob } from './hardware.js';
import { planDeployment, type PlanInput, type PlanResult } from './plan.js';

export interface KnobChange {
  readonly knob: HardwareKnob;
  readonly factor: number;
}

export interface Sensitivity {
  readonly knob: HardwareKnob;
  readonly factor: number;
  readonly result: PlanResult;
  /** Relative change of each metric against the base plan (0.25 = 25% higher). */
  readonly change: { readonly ttftMs: number | null; readonly tpotMs: number; readonly outputTokensPerSecond: number };
}

/** Parses `memory-bandwidth=1.5x,compute=2` (the `x` is optional). */
export function parseWhatIf(text: string): KnobChange[] {
  return text.split(',').map((part) => {
    const [name, value] = part.split('=').map((piece) => piece.trim());
    const knob = HARDWARE_KNOBS.find((candidate) => candidate === name);
    const factor = Number((value ?? '').replace(/x$/i, ''));
    if (!knob || !(factor > 0)) {
      throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--what-if takes KNOB=FACTORx pairs (knobs: ${HARDWARE_KNOBS.join(', ')}), got "${part}"`);
    }
    return { knob, factor };
  });
}

const relative = (value: number, base: number): number => (base === 0 ? 0 : value / base - 1);

export function whatIf(input: PlanInput, changes: readonly KnobChange[]): { base: PlanResult; rows: Sensitivity[] } {
  const base = planDeployment(input);
  const rows = changes.map(({ knob, factor }) => {
    const result = planDeployment({ ...input, hardware: scaleHardware(input.hardware, knob, factor) });
    const ttft = result.ttftMs !== null && base.ttftMs !== null ? relative(result.ttftMs, base.ttftMs) : null;
    return {
      knob,
      factor,
      result,
      change: { ttftMs: ttft, tpotMs: relative(result.tpotMs, base.tpotMs), outputTokensPerSecond: relative(result.outputTokensPerSecond, base.outputTokensPerSecond) },
    };
  });
  return { base, rows };
}
