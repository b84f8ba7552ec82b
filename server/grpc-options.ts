/**
 * The grpc-js server options from the configuration: message size, keepalive pings (dead peers found
 * and their calls closed), and the connection age after which clients are asked to reconnect (so
 * client-side balancing finds new pods) with the grace its calls get.
 */
import type { ChannelOptions } from '@grpc/grpc-js';
import type { ServerConfig } from './config';

export function grpcServerOptions(config: ServerConfig): ChannelOptions {
  const options: ChannelOptions = {
    'grpc.max_receive_message_length': config.maxReceiveBytes,
    'grpc.keepalive_time_ms': config.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': config.keepaliveTimeoutMs,
  };
  if (config.maxConnectionAgeMs !== undefined) options['grpc.max_connection_age_ms'] = config.maxConnectionAgeMs;
  if (config.maxConnectionAgeGraceMs !== undefined) options['grpc.max_connection_age_grace_ms'] = config.maxConnectionAgeGraceMs;
  return options;
}
