/** `introspect call <Service>.<Method> [json|-]`: any RPC, JSON in, one JSON object per message out. */
import { UsageError } from '../args';
import type { Command } from '../command';
import { apiMethods, findMethod } from '../../../api/methods';

/** A JSON value, a JSON array (client streams), or newline-delimited JSON objects. */
export function parseRequests(text: string, clientStream: boolean): unknown[] {
  const trimmed = text.trim();
  if (trimmed === '') return [{}];
  try {
    const v: unknown = JSON.parse(trimmed);
    if (Array.isArray(v) && clientStream) return v;
    return [v];
  } catch {
    const lines = trimmed.split('\n').filter((l) => l.trim() !== '');
    if (lines.length > 1) {
      return lines.map((l, i) => {
        try {
          return JSON.parse(l) as unknown;
        } catch (err) {
          throw new UsageError(`request line ${i + 1} is not JSON: ${(err as Error).message}`);
        }
      });
    }
    throw new UsageError(`the request is not JSON: ${trimmed.slice(0, 60)}`);
  }
}

export const callCommand: Command = {
  spec: {
    name: 'call',
    usage: '<Service>.<Method> [JSON|-]',
    summary: 'Call any RPC. The request is JSON (proto3 JSON mapping; "-" reads stdin; default {}); each response message is printed as one JSON object per line.',
    flags: {
      list: { type: 'boolean', help: 'list the methods and exit' },
    },
    details: [
      'Client-streaming methods (UploadModel) take a JSON array or one JSON object per line.',
      'Examples:',
      '  introspect call ModelService.ListModels',
      `  introspect call ModelService.LoadModel '{"name":"vgg","path":"vgg11_cifar10.onnx"}'`,
      `  echo '{"dataset":"mnist","limit":3}' | introspect call DatasetService.GetSamples -`,
    ].join('\n'),
  },
  async run(args, ctx) {
    if (args.flags.list) {
      for (const m of apiMethods()) {
        const kind = m.requestStream ? 'client-stream' : m.responseStream ? 'server-stream' : 'unary';
        ctx.print(`${m.service.split('.').pop()}.${m.method}  (${m.requestType}) → ${m.responseType}  ${kind}`);
      }
      return 0;
    }
    const [spec, input] = args.positionals;
    if (!spec) throw new UsageError('name the method: introspect call <Service>.<Method> (see --list)');
    const method = findMethod(spec);
    if (!method) throw new UsageError(`unknown method '${spec}' (see introspect call --list)`);
    if (args.positionals.length > 2) throw new UsageError('give the request as one JSON argument (quote it) or "-" for stdin');
    const text = input === '-' ? await ctx.io.readStdin() : (input ?? '{}');
    const requests = parseRequests(text, method.requestStream).map((r) => method.request.fromJSON(r));
    for await (const msg of ctx.client.call(method, requests, ctx.callOpts())) {
      ctx.printJson(method.response.toJSON(msg));
    }
    return 0;
  },
};
