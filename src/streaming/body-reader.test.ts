import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, test } from "node:test";
import { BodyReader } from "./body-reader.ts";

function body(): Readable {
  return new Readable({ read() {} });
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("BodyReader", () => {
  test("hands over chunks in order, those that came while nobody read included, then the end", async () => {
    const source = body();
    const reader = new BodyReader(source);
    source.push(Buffer.from("a"));
    source.push(Buffer.from("b"));
    await turn();
    assert.equal(String(await reader.read()), "a");
    assert.equal(String(reader.poll()), "b");
    assert.equal(reader.poll(), undefined);
    const waiting = reader.read();
    source.push(Buffer.from("c"));
    assert.equal(String(await waiting), "c");
    source.push(null);
    assert.equal(await reader.read(), undefined);
    assert.equal(await reader.read(), undefined);
  });

  test("pauses the body while the reader is busy and past its bound, and resumes it on the next read", async () => {
    const source = body();
    const reader = new BodyReader(source);
    const big = Buffer.alloc(40 * 1024);
    source.push(big);
    await turn();
    assert.equal(source.isPaused(), false, "one chunk under the bound does not pause");
    source.push(big);
    await turn();
    assert.equal(source.isPaused(), true, "past the bound nothing more is taken from the body");
    assert.equal((await reader.read())?.byteLength, big.byteLength);
    assert.equal(reader.poll()?.byteLength, big.byteLength);
    assert.equal(source.isPaused(), true, "still paused: nobody asked for more yet");
    const waiting = reader.read();
    assert.equal(source.isPaused(), false, "a read with nothing queued resumes the body");
    source.push(Buffer.from("next"));
    assert.equal(String(await waiting), "next");
  });

  test("a body destroyed before its end rejects the read, with its error or as a premature close", async () => {
    const failing = body();
    const failingReader = new BodyReader(failing);
    const read = failingReader.read();
    failing.destroy(new Error("socket hang up"));
    await assert.rejects(read, /socket hang up/);
    await assert.rejects(failingReader.read(), /socket hang up/);

    const closed = body();
    const closedReader = new BodyReader(closed);
    const waiting = closedReader.read();
    closed.destroy();
    await assert.rejects(waiting, { code: "ERR_STREAM_PREMATURE_CLOSE" });
  });

  test("drain discards the rest and settles when the body ends", async () => {
    const source = body();
    const reader = new BodyReader(source);
    source.push(Buffer.from("kept until drained"));
    await turn();
    const drained = reader.drain();
    source.push(Buffer.from("more"));
    source.push(null);
    await drained;
    assert.equal(reader.poll(), undefined);
  });
});
