/**
 * Readiness from several conditions: the server is SERVING only while nothing blocks it (the requested
 * device unavailable, a model or data root missing, the model repository loading or failed), and never
 * again once draining starts. gRPC health and /healthz show the reasons.
 *
 *   const ready = new Readiness(health);
 *   ready.block('repository', 'loading the model repository /etc/introspect/repository.yaml');
 *   ready.clear('repository');   // SERVING when nothing else blocks
 */
import type { Health } from './health';

export class Readiness {
  private readonly blockers = new Map<string, string>();
  private draining = false;

  constructor(private readonly health: Health) {}

  block(key: string, reason: string): void {
    this.blockers.set(key, reason);
    this.apply();
  }

  clear(key: string): void {
    this.blockers.delete(key);
    this.apply();
  }

  /** Sets the health status from the blockers now (SERVING when there are none). */
  update(): void {
    this.apply();
  }

  /** NOT_SERVING for good: the server is shutting down. */
  drain(): void {
    this.draining = true;
    this.health.setNotServing();
  }

  private apply(): void {
    if (this.draining) return;
    if (this.blockers.size === 0) this.health.setServing();
    else this.health.setNotServing([...this.blockers.values()].join('; '));
  }
}
