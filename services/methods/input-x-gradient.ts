/** Input × gradient as a wrapper over any method A: x ⊙ A(x) (Shrikumar et al. 2016, with A = the gradient). */
import type { WrapperDefinition } from './wrapper';

export interface InputXGradientWrapper {
  kind: 'input_x_gradient';
}

export const inputXGradient: WrapperDefinition<InputXGradientWrapper> = {
  kind: 'input_x_gradient',
  resolve: () => ({ kind: 'input_x_gradient' }),
  passes: () => 1,
  rowBytes: (_w, size) => size * 4,
  wrap: (inner) => async (input) => {
    const size = input.length;
    const a = await inner(input);
    const out = new Float32Array(a.length);
    for (let i = 0; i < a.length; i++) out[i] = input[i % size] * a[i];
    return out;
  },
  key: (w) => ({ kind: w.kind }),
};
