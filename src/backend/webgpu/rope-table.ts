/**
 * The cos/sin table the RoPE kernel reads: [numTokens, halfDims, 2], computed
 * here in float64 as the reference backend does and rounded to f32 once.
 * (A GPU's f32 sin of an angle of thousands of radians is off in the fourth
 * digit, since the angle itself has only 24 bits.)
 */
export function ropeTable(positions: Int32Array, inverseFrequencies: Float32Array, halfDims: number): Float32Array {
  /** [numTokens, halfDims, 2] */
  const table = new Float32Array(positions.length * halfDims * 2);
  for (let t = 0; t < positions.length; t++) {
    for (let i = 0; i < halfDims; i++) {
      const angle = positions[t] * inverseFrequencies[i];
      table[(t * halfDims + i) * 2] = Math.cos(angle);
      table[(t * halfDims + i) * 2 + 1] = Math.sin(angle);
    }
  }
  return table;
}
