/**
 * How raw pixels (0..255, HWC) become the model's input (float32, CHW):
 *   fit to the input size (bilinear resize, or zero-pad / centre-crop), reorder channels,
 *   x = (pixel * scale - mean[c]) / std[c].
 */
export type ChannelOrderName = 'rgb' | 'bgr';
export type FitName = 'resize' | 'pad';

export interface PreprocessSpec {
  scale: number; // default 1/255
  mean: number[]; // per channel (length = input channels); default 0
  std: number[]; // per channel; default 1
  channelOrder: ChannelOrderName;
  fit: FitName;
}

export function defaultPreprocessing(channels: number): PreprocessSpec {
  return {
    scale: 1 / 255,
    mean: new Array<number>(channels).fill(0),
    std: new Array<number>(channels).fill(1),
    channelOrder: 'rgb',
    fit: 'resize',
  };
}
