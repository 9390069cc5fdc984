/**
 * Deadlines of many items at one-second resolution (JWT `exp` is in whole seconds), swept by one shared
 * interval: scheduling, moving and cancelling are O(1), a sweep visits only the seconds that have
 * passed, and an idle connection costs one Set entry rather than a timer of its own.
 */
export class ExpiryWheel<T> {
  private readonly slots = new Map<number, Set<T>>();
  /** The earliest second not yet swept: nothing is ever scheduled before it. */
  private cursor: number;

  constructor(nowSecond: number) {
    this.cursor = nowSecond;
  }

  /** Due at `second` (a deadline already passed is due on the next sweep). */
  schedule(item: T, second: number): void {
    const at = Math.max(second, this.cursor);
    let slot = this.slots.get(at);
    if (!slot) this.slots.set(at, (slot = new Set()));
    slot.add(item);
  }

  /** `second` is what the item was scheduled with. */
  cancel(item: T, second: number): void {
    const at = Math.max(second, this.cursor);
    const slot = this.slots.get(at);
    if (slot?.delete(item) && slot.size === 0) this.slots.delete(at);
  }

  /** Removes and returns every item due at or before `nowSecond`. */
  takeDue(nowSecond: number): T[] {
    const due: T[] = [];
    for (; this.cursor <= nowSecond; this.cursor++) {
      const slot = this.slots.get(this.cursor);
      if (!slot) continue;
      this.slots.delete(this.cursor);
      due.push(...slot);
    }
    return due;
  }
}
