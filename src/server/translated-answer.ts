// A JSON answer a door translates before its client gets it (a background run's, a batch line's): its record, held by
// RequestContext.writesBeforeRecord, is published once the translation is made or has failed, saying which.
import { ClientAbortedError, type GatewayError } from "../errors/gateway-error.ts";
import { toGatewayError } from "../errors/render-error.ts";
import { type JsonAnswer, parseAnswerBody } from "../pipeline/pipeline-types.ts";

/**
 * `translate` of the answer's body; its record released with the error it threw, if it did (what the client is given
 * instead of the answer). A record published before the translation said 200 `success` for a run that failed.
 */
export function translatedAnswer<T>(result: JsonAnswer, translate: (answer: unknown) => T): T {
  let failure: GatewayError | undefined;
  try {
    return translate(parseAnswerBody(result.bodyText));
  } catch (error) {
    if (!(error instanceof ClientAbortedError)) failure = toGatewayError(error);
    throw error;
  } finally {
    result.releaseRecord?.({ failure });
  }
}
