/**
 * What the analyses need from a model: logits for a batch of images in input space.
 * The server binds it to `engine.forward(model.engineModel, …)`; tests bind it to an onnxruntime
 * session on the model file.
 */

/** Logits [n, classes] for n images [n, C, H, W] (float32, input space). */
export type Forward = (input: Float32Array, n: number, signal?: AbortSignal) => Promise<Float32Array>;
