/**
 * Work put off to the end of the current event-loop turn, so everything that arrived in the turn goes
 * out together and nothing waits on a timer: rooms first send what they batched in the turn, then the
 * sockets written in the turn (by those batches or directly) are uncorked, each one writev.
 *
 * It runs in the turn's check phase (setImmediate): after the I/O callbacks that delivered the entries,
 * before the loop waits for more. When the process is busy, a turn spans more I/O, so batches grow
 * with load by themselves; when it is idle, an entry leaves within the turn it arrived in.
 */

export interface TurnTask {
  turnEnded(): void;
}

/** What runs first: a batch flush writes to sockets that must still be uncorked in the same turn. */
export type TurnLane = 'batches' | 'writes';

export class TurnEnd {
  private readonly lanes: Record<TurnLane, Set<TurnTask>> = { batches: new Set(), writes: new Set() };
  private scheduled = false;

  /** Runs `task.turnEnded()` once at the end of this turn, however often it is deferred meanwhile. */
  defer(lane: TurnLane, task: TurnTask): void {
    this.lanes[lane].add(task);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  private readonly run = (): void => {
    try {
      // A Set's iteration visits what is added during it: a flush's writes are uncorked in this same run.
      for (const lane of [this.lanes.batches, this.lanes.writes]) {
        for (const task of lane) {
          lane.delete(task);
          task.turnEnded();
        }
      }
    } finally {
      this.scheduled = false;
      // Left over only if a task threw (or deferred into a lane already run): the next turn takes it.
      if (this.lanes.batches.size > 0 || this.lanes.writes.size > 0) this.schedule();
    }
  };
}

/** One per process: every room and socket of every transport ends its turn together. */
export const turnEnd = new TurnEnd();
