/** The thesis' numbers the reproduction is compared with (full text in shared/seed, Chinese). */

/** Table 5-1: VGG11_CIFAR, 40% of one layer's neurons zeroed, test accuracy: [top, bottom]. */
export const THESIS_TABLE_5_1: Array<[number, number]> = [
  [0.615, 0.547],
  [0.407, 0.705],
  [0.141, 0.739],
  [0.198, 0.74],
  [0.1, 0.739],
  [0.146, 0.739],
  [0.618, 0.739],
  [0.653, 0.739],
];
export const THESIS_ACCURACY = 0.739;
export const THESIS_TRUNCATED_ACCURACY = 0.8;
/** Epochs the thesis trained VGG11_CIFAR for. */
export const THESIS_EPOCHS = 30;
