/**
 * An idle server for an hour, simulated: the poll loops of the three queues run 7,200 empty
 * polls each (an hour at the default 500 ms poll interval) with a 1 ms interval. The polls answer
 * from memory, so the hour takes seconds and what is measured is the loops themselves: no abort
 * listener piles up on the shared signal and the heap after a full GC stays flat. Then the same
 * loops, on the real job queue (PGlite), still handle a job and dead-letter a poison one.
 */
import { getEventListeners } from "node:events";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPglite } from "../../functions/src/platform/db/pglite.js";
import type { Db } from "../../functions/src/platform/db/port.js";
import { jsonLogger } from "../../functions/src/platform/log.js";
import { abortableSleep, eachDelivery, pollQueue } from "../../functions/src/platform/queue/consumer.js";
import { pgJobQueue } from "../../functions/src/platform/queue/pg.js";
import type { JobQueue, QueueName } from "../../functions/src/platform/queue/port.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const log = jsonLogger("error");

const heapAfterGc = () => {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
};

describe("an idle hour of the queue consumers", () => {
  let db: Db;
  beforeAll(async () => {
    db = await openPglite();
    await db.migrate();
  });
  afterAll(async () => db?.close());

  it("abortableSleep leaves no listener behind, whether it times out or is aborted", async () => {
    const controller = new AbortController();
    for (let i = 0; i < 50; i++) await abortableSleep(0, controller.signal);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    const pending = abortableSleep(60_000, controller.signal);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
    controller.abort();
    await pending;
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("7,200 empty polls per queue: no listener growth, a flat heap, and the loops still work", async () => {
    const inner = pgJobQueue(db.orm, { maxAttempts: 2, backoffSeconds: () => 0 });
    const polls = new Map<QueueName, number>();
    let idleHour = true;
    const queue: JobQueue = {
      ...inner,
      receive: (name, opts) => {
        polls.set(name, (polls.get(name) ?? 0) + 1);
        return idleHour ? Promise.resolve([]) : inner.receive(name, opts);
      },
    };
    const names: QueueName[] = ["generation", "training", "results"];
    const controller = new AbortController();
    const handled: string[] = [];
    const loops = names.map((name) =>
      pollQueue(
        queue,
        name,
        eachDelivery(async (d) => {
          if ((d.body as { poison?: boolean }).poison) throw new Error("cannot handle this job");
          handled.push(d.id);
        }),
        { log, signal: controller.signal, visibilityTimeoutSeconds: 30, idleMs: 1 },
      ),
    );
    const pollsDone = (n: number) => names.every((q) => (polls.get(q) ?? 0) >= n);
    const until = async (n: number) => {
      while (!pollsDone(n)) {
        await new Promise((r) => setTimeout(r, 20));
        expect(getEventListeners(controller.signal, "abort").length).toBeLessThanOrEqual(names.length);
      }
    };
    await until(600); // warm: JIT, statement caches
    const warm = heapAfterGc();
    await until(7_200);
    const idle = heapAfterGc();
    const grownMb = (idle - warm) / 2 ** 20;
    console.info(`idle hour: heap ${(warm / 2 ** 20).toFixed(1)} MB → ${(idle / 2 ** 20).toFixed(1)} MB`);
    expect(grownMb).toBeLessThan(3);

    idleHour = false;
    // Still consuming after the idle hour: a good job is handled, a poison job is dead-lettered.
    await inner.send("training", "good-1", { poison: false });
    await inner.send("training", "poison-1", { poison: true });
    const deadline = Date.now() + 15_000;
    while ((await inner.stats("training")).dead < 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    controller.abort();
    await Promise.all(loops);
    expect(handled).toContain("good-1");
    const dead = await inner.deadLetters("training");
    expect(dead.map((d) => [d.id, d.attempts, d.error])).toEqual([["poison-1", 2, "cannot handle this job"]]);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });
});
