/** Class names known for the built-in data sets, and the fallback. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** "0", "1", … "n-1" (also the MNIST digit names). */
export function numberedClasses(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String(i));
}
