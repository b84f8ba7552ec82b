/**
 * Every bad input gets the right status and a message naming the problem; nothing is left
 * registered, and the server keeps answering.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import { PNG } from 'pngjs';
import { ElementType } from '../../api/generated/introspect/v1/common';
import { DatasetFormat } from '../../api/generated/introspect/v1/datasets';
import type { ModelInfo, UploadModelRequest } from '../../api/generated/introspect/v1/models';
import { needShared, sharedPath } from '../support/shared';
import { BUNDLED_MODEL, collect, grpcError, startTestServer, type TestServer } from '../support/server';

const MAX_UPLOAD = 600_000;

describe('server: bad input', function () {
  this.timeout(120_000);
  let ts: TestServer;
  let modelBytes: Buffer;
  const png = (): Buffer => {
    const p = new PNG({ width: 4, height: 4 });
    p.data.fill(200);
    return PNG.sync.write(p);
  };

  before(async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'models/resnet20_cifar10.json');
    ts = await startTestServer({ models: [BUNDLED_MODEL], config: { maxUploadBytes: MAX_UPLOAD } });
    modelBytes = fs.readFileSync(BUNDLED_MODEL);
    const root = ts.modelRoot;
    await fs.promises.writeFile(path.join(root, 'corrupt.onnx'), modelBytes.subarray(0, Math.floor(modelBytes.length / 2)));
    await fs.promises.writeFile(path.join(root, 'notes.onnx'), 'these are my notes, not a model\n');
    await fs.promises.writeFile(path.join(root, 'picture.onnx'), png());
    await fs.promises.writeFile(path.join(root, 'broken.json'), '{"input": {"mean": [0.1]');
    await fs.promises.copyFile(sharedPath('models/resnet20_cifar10.json'), path.join(root, 'rgb-sidecar.json'));
    const outside = path.join(ts.tmp, 'outside');
    await fs.promises.mkdir(outside);
    await fs.promises.writeFile(path.join(outside, 'secret.onnx'), modelBytes);
    await fs.promises.writeFile(path.join(outside, 'secret.json'), '{}');
    await fs.promises.symlink(path.join(outside, 'secret.onnx'), path.join(root, 'escape.onnx'));
    await fs.promises.symlink(outside, path.join(root, 'linked'));
    await fs.promises.mkdir(path.join(ts.dataRoot, 'junk'));
    await fs.promises.writeFile(path.join(ts.dataRoot, 'junk', 'readme.txt'), 'nothing here');
    await fs.promises.symlink(outside, path.join(ts.dataRoot, 'elsewhere'));
    await ts.client.loadModel({ name: 'good', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
  });
  after(async () => {
    await ts?.close();
  });

  /** Asserts the status and that the message matches, then that nothing new is registered and the server answers. */
  async function expectError(fn: () => Promise<unknown>, code: status, message: RegExp): Promise<void> {
    const err = await grpcError(fn);
    assert.equal(status[err.code], status[code], `${err.details}`);
    assert.match(err.details, message);
    assert.deepEqual((await ts.client.listModels()).map((m) => m.name), ['good']);
    assert.deepEqual((await ts.client.listDatasets()).map((d) => d.name), ['mnist']);
  }

  const load = (req: Parameters<TestServer['client']['loadModel']>[0]) => () => ts.client.loadModel(req);

  it('refuses corrupt and non-ONNX model files', async () => {
    await expectError(load({ name: 'm', path: 'corrupt.onnx' }), status.INVALID_ARGUMENT, /corrupt\.onnx/);
    await expectError(load({ name: 'm', path: 'notes.onnx' }), status.INVALID_ARGUMENT, /notes\.onnx/);
    await expectError(load({ name: 'm', path: 'picture.onnx' }), status.INVALID_ARGUMENT, /picture\.onnx/);
    await expectError(load({ name: 'm', path: 'broken.json' }), status.INVALID_ARGUMENT, /broken\.json/);
    await expectError(load({ name: 'm', path: 'rgb-sidecar.json' }), status.INVALID_ARGUMENT, /not a tfjs model\.json/);
    await expectError(load({ name: 'm', path: 'mnist_cnn.onnx', format: 2 }), status.INVALID_ARGUMENT, /ONNX model.*tfjs/);
  });

  it('refuses paths outside the model root, also through symbolic links', async () => {
    await expectError(load({ name: 'm', path: '../outside/secret.onnx' }), status.PERMISSION_DENIED, /'\.\.\/outside\/secret\.onnx' is outside the model root/);
    await expectError(load({ name: 'm', path: '/etc/passwd' }), status.PERMISSION_DENIED, /'\/etc\/passwd'/);
    await expectError(load({ name: 'm', path: 'escape.onnx' }), status.PERMISSION_DENIED, /'escape\.onnx' leads outside the model root .*symbolic link/);
    await expectError(load({ name: 'm', path: 'linked/secret.onnx' }), status.PERMISSION_DENIED, /linked\/secret\.onnx/);
    await expectError(
      load({ name: 'm', path: 'mnist_cnn.onnx', sidecarPath: '../outside/secret.json' }),
      status.PERMISSION_DENIED,
      /sidecar_path '\.\.\/outside\/secret\.json'/,
    );
    await expectError(load({ name: 'm', path: 'missing.onnx' }), status.NOT_FOUND, /'missing\.onnx' does not exist/);
    await expectError(load({ name: 'm', path: '' }), status.INVALID_ARGUMENT, /path is required/);
  });

  it('refuses bad names, duplicates and settings that do not fit the model', async () => {
    await expectError(load({ name: '', path: 'mnist_cnn.onnx' }), status.INVALID_ARGUMENT, /name is required/);
    await expectError(load({ name: 'has space', path: 'mnist_cnn.onnx' }), status.INVALID_ARGUMENT, /'has space' is not a valid model name/);
    await expectError(load({ name: 'good', path: 'mnist_cnn.onnx' }), status.ALREADY_EXISTS, /'good' is already loaded/);
    await expectError(load({ name: 'm', path: 'mnist_cnn.onnx', sidecarPath: 'broken.json' }), status.INVALID_ARGUMENT, /sidecar 'broken\.json' is not valid JSON/);
    await expectError(load({ name: 'm', path: 'mnist_cnn.onnx', sidecarPath: 'rgb-sidecar.json' }), status.INVALID_ARGUMENT, /input shape \[3, 32, 32\] does not match .*\[1, 28, 28\]/);
    await expectError(load({ name: 'm', path: 'mnist_cnn.onnx', classNames: ['a', 'b'] }), status.INVALID_ARGUMENT, /class_names has 2 names but the model has 10 outputs/);
    await expectError(
      load({ name: 'm', path: 'mnist_cnn.onnx', preprocessing: { mean: [0.1, 0.2, 0.3] } }),
      status.INVALID_ARGUMENT,
      /preprocessing\.mean has 3 values but the model takes 1 input channel/,
    );
  });

  it('answers NOT_FOUND naming unknown models and datasets', async () => {
    await expectError(() => ts.client.getModel('ghost'), status.NOT_FOUND, /model 'ghost' is not loaded/);
    await expectError(() => ts.client.unloadModel('ghost'), status.NOT_FOUND, /'ghost'/);
    await expectError(() => ts.client.predict({ model: 'ghost', encoded: [png()] }), status.NOT_FOUND, /'ghost'/);
    await expectError(() => collect(ts.client.evaluate({ model: 'ghost', dataset: 'mnist' })), status.NOT_FOUND, /'ghost'/);
    await expectError(() => ts.client.getDataset('nodata'), status.NOT_FOUND, /'nodata'/);
    await expectError(() => ts.client.unregisterDataset('nodata'), status.NOT_FOUND, /'nodata'/);
    await expectError(() => collect(ts.client.getSamples({ dataset: 'nodata' })), status.NOT_FOUND, /'nodata'/);
    await expectError(() => collect(ts.client.evaluate({ model: 'good', dataset: 'nodata' })), status.NOT_FOUND, /'nodata'/);
  });

  it('refuses datasets of the wrong format or outside the data root', async () => {
    const register = (req: Parameters<TestServer['client']['registerDataset']>[0]) => () => ts.client.registerDataset(req);
    await expectError(register({ name: 'd', path: 'builtin:mnist', format: DatasetFormat.DATASET_FORMAT_CIFAR10 }), status.INVALID_ARGUMENT, /builtin:mnist is an IDX data set, not cifar10/);
    await expectError(register({ name: 'd', path: 'junk' }), status.INVALID_ARGUMENT, /junk: cannot tell the dataset format/);
    await expectError(register({ name: 'd', path: 'junk', format: DatasetFormat.DATASET_FORMAT_CIFAR10 }), status.INVALID_ARGUMENT, /junk/);
    await expectError(register({ name: 'd', path: '../outside' }), status.PERMISSION_DENIED, /'\.\.\/outside'/);
    await expectError(register({ name: 'd', path: 'elsewhere' }), status.PERMISSION_DENIED, /'elsewhere'.*symbolic link/);
    await expectError(register({ name: 'mnist', path: 'builtin:mnist' }), status.ALREADY_EXISTS, /'mnist'/);
    await expectError(() => collect(ts.client.getSamples({ dataset: 'mnist', indices: [0, 10_000] })), status.INVALID_ARGUMENT, /indices\[1\] = 10000 is outside/);
  });

  it('refuses images of the wrong shape or kind', async () => {
    const predict = (req: Parameters<TestServer['client']['predict']>[0]) => () => ts.client.predict({ model: 'good', ...req });
    const u8 = (shape: number[], bytes = shape.reduce((a, b) => a * b, 1)) => ({
      shape,
      dtype: ElementType.ELEMENT_TYPE_UINT8,
      data: Buffer.alloc(bytes, 7),
    });
    await expectError(predict({ images: u8([28, 28]) }), status.INVALID_ARGUMENT, /images\.shape \[28, 28\] must be \[N, H, W, C\] or \[H, W, C\]/);
    await expectError(predict({ images: u8([2, 28, 28, 2]) }), status.INVALID_ARGUMENT, /images\.shape: images with 2 channels cannot feed model 'good'/);
    await expectError(predict({ images: u8([1, 28, 28, 1], 100) }), status.INVALID_ARGUMENT, /images: shape \[1, 28, 28, 1\] needs 784 bytes of data, got 100/);
    await expectError(predict({ images: u8([0, 28, 28, 1], 0) }), status.INVALID_ARGUMENT, /images\.shape .* must hold positive sizes/);
    await expectError(predict({ images: u8([28, 28, 1]), encoded: [png()] }), status.INVALID_ARGUMENT, /not both/);
    await expectError(predict({}), status.INVALID_ARGUMENT, /no images/);
    await expectError(predict({ encoded: [png(), Buffer.from('GIF89a...')] }), status.INVALID_ARGUMENT, /encoded\[1\]: not a PNG or JPEG image/);
    // A good request still works afterwards.
    const ok = await ts.client.predict({ model: 'good', images: u8([2, 28, 28, 1]) });
    assert.equal(ok.predictions.length, 2);
  });

  /** A raw upload: the given messages, in order. */
  function rawUpload(messages: UploadModelRequest[]): Promise<ModelInfo> {
    return new Promise((resolve, reject) => {
      const call = ts.client.models.uploadModel(new Metadata(), {}, (err, res) => (err ? reject(err) : resolve(res)));
      for (const m of messages) call.write(m);
      call.end();
    });
  }

  it('refuses oversized uploads, size mismatches and malformed upload streams', async () => {
    const big = fs.readFileSync(sharedPath('models/resnet20_cifar10.onnx'));
    assert.ok(big.length > MAX_UPLOAD);
    // Refused at the header: the client stops sending its many chunks.
    await expectError(() => ts.client.uploadModel({ name: 'u' }, big, { chunkBytes: 16 * 1024 }), status.RESOURCE_EXHAUSTED, new RegExp(`${big.length} bytes is more than the server's upload limit of ${MAX_UPLOAD} bytes`));
    await expectError(
      () => ts.client.uploadModel({ name: 'u', sizeBytes: modelBytes.length + 100 }, modelBytes, { chunkBytes: 32 * 1024 }),
      status.INVALID_ARGUMENT,
      new RegExp(`size_bytes announced ${modelBytes.length + 100} bytes but the upload carried ${modelBytes.length}`),
    );
    await expectError(
      () => ts.client.uploadModel({ name: 'u', sizeBytes: modelBytes.length - 100 }, modelBytes, { chunkBytes: 32 * 1024 }),
      status.INVALID_ARGUMENT,
      new RegExp(`size_bytes announced ${modelBytes.length - 100} bytes but more arrived`),
    );
    await expectError(() => rawUpload([{ part: { $case: 'chunk', value: modelBytes.subarray(0, 10) } }]), status.INVALID_ARGUMENT, /first UploadModel message must carry the header/);
    await expectError(() => rawUpload([]), status.INVALID_ARGUMENT, /carried no messages/);
    await expectError(() => rawUpload([{ part: { $case: 'header', value: { name: 'u', format: 0, classNames: [], sizeBytes: 0 } } }]), status.INVALID_ARGUMENT, /size_bytes is required/);
    await expectError(() => ts.client.uploadModel({ name: 'u', format: 2 }, modelBytes), status.INVALID_ARGUMENT, /ONNX models only/);
    await expectError(() => ts.client.uploadModel({ name: 'good' }, modelBytes), status.ALREADY_EXISTS, /'good' is already loaded/);
    await expectError(() => ts.client.uploadModel({ name: 'u' }, modelBytes.subarray(0, 5000)), status.INVALID_ARGUMENT, /uploaded file/);
    await expectError(() => ts.client.uploadModel({ name: 'u' }, Buffer.from('{"modelTopology": {}}')), status.INVALID_ARGUMENT, /JSON, not an ONNX model/);
  });

  it('answers INVALID_ARGUMENT, not INTERNAL, for requests that do not decode', async () => {
    // A uint64 above 2^53 cannot be represented by the generated code (forceLong=number).
    const tooBig = await grpcError(() => collect(ts.client.getSamples({ dataset: 'x', offset: 2 ** 60 })));
    assert.equal(tooBig.code, status.INVALID_ARGUMENT);
    assert.match(tooBig.details, /GetSamples could not be decoded/);
  });

  it('still serves health and calls afterwards', async () => {
    assert.ok(ts.server.health.isServing());
    const info = await ts.client.getModel('good');
    assert.equal(info.convLayers.length, 3);
  });
});
