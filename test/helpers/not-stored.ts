// What a client is told about a Responses answer the gateway sent but could not keep (not-kept-answers.ts NOT_STORED).
import assert from "node:assert/strict";
import OpenAI from "openai";

/** Asserts `promise` rejects with a 404 or 400 of OpenAI's shape saying the response could not be stored. */
export async function assertToldNotStored(promise: Promise<unknown>, status: 404 | 400, param: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.equal(error.status, status, error.message);
    assert.match(error.message, /could not be stored/);
    assert.equal(error.param, param);
    return true;
  });
}
