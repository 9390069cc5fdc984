/**
 * A minimal typed event emitter (browsers have no node:events): `Events` maps each event name to its
 * listener's argument. A listener that throws does not stop the others or the SDK: it is reported on the
 * `listenerError` hook, so one broken application handler can not corrupt a subscription's bookkeeping.
 */
export class Emitter<Events> {
  private readonly listeners = new Map<keyof Events, Set<(arg: never) => void>>();

  constructor(private readonly listenerError: (err: unknown) => void = (err) => queueMicrotask(() => { throw err; })) {}

  on<E extends keyof Events>(event: E, listener: (arg: Events[E]) => void): this {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (arg: never) => void);
    return this;
  }

  off<E extends keyof Events>(event: E, listener: (arg: Events[E]) => void): this {
    this.listeners.get(event)?.delete(listener as (arg: never) => void);
    return this;
  }

  protected emit<E extends keyof Events>(event: E, arg: Events[E]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        (listener as (arg: Events[E]) => void)(arg);
      } catch (err) {
        this.listenerError(err);
      }
    }
  }
}
