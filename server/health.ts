/**
 * grpc.health.v1 with a status per service ('' = the whole server). Serving after start; every
 * service NOT_SERVING once draining starts, so Kubernetes stops routing before the port closes.
 */
import type { Server } from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';

export class Health {
  private readonly impl: HealthImplementation;
  private serving = false;
  private why = '';

  constructor(private readonly services: readonly string[]) {
    const initial: Record<string, ServingStatus> = { '': 'NOT_SERVING' };
    for (const s of services) initial[s] = 'NOT_SERVING';
    this.impl = new HealthImplementation(initial);
  }

  addToServer(server: Server): void {
    this.impl.addToServer(server);
  }

  isServing(): boolean {
    return this.serving;
  }

  /** Why the server is not serving ('draining' by default, or what setNotServing was told). */
  reason(): string {
    return this.serving ? '' : this.why || 'draining';
  }

  setServing(): void {
    this.why = '';
    this.set('SERVING');
  }

  setNotServing(reason = ''): void {
    this.why = reason;
    this.set('NOT_SERVING');
  }

  private set(s: ServingStatus): void {
    this.serving = s === 'SERVING';
    this.impl.setStatus('', s);
    for (const name of this.services) this.impl.setStatus(name, s);
  }
}
