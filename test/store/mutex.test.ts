import assert from "node:assert/strict";
import { test } from "node:test";
import { Mutex } from "../../app/store/mutex.js";

test("the mutex runs one at a time, in order, urgent callers before waiting ones", async () => {
  const mutex = new Mutex();
  const order: string[] = [];
  let running = 0;
  const job = (name: string) => async () => {
    running += 1;
    assert.equal(running, 1, "one at a time");
    await new Promise((resolve) => setTimeout(resolve, 5));
    order.push(name);
    running -= 1;
    return name;
  };
  const results = await Promise.all([
    mutex.run(job("first")),
    mutex.run(job("second")),
    mutex.run(job("third")),
    mutex.run(job("urgent-1"), { urgent: true }),
    mutex.run(job("urgent-2"), { urgent: true }),
  ]);
  assert.deepEqual(order, ["first", "urgent-1", "urgent-2", "second", "third"]);
  assert.deepEqual(results, ["first", "second", "third", "urgent-1", "urgent-2"]);
});

test("a failing caller does not stop the ones after it", async () => {
  const mutex = new Mutex();
  const failed = mutex.run(() => Promise.reject(new Error("boom")));
  const next = mutex.run(() => Promise.resolve("next"));
  await assert.rejects(failed, /boom/);
  assert.equal(await next, "next");
});
