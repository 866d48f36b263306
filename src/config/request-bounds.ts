// The bounds on what one client request may make the gateway do, in one place. They keep every step linear and
// small whatever a client sends (issue 13); SECURITY.md lists them with the reason for each value. They are
// constants, not config: raising them would only let a single request cost more; none is near what a real
// client sends.

/** Nesting depth of a JSON request body (objects and arrays). Tool schemas nest ~3 levels per schema level. */
export const MAX_JSON_DEPTH = 64;

/**
 * Members of one JSON object in a request body (a JSON schema's `properties`, `metadata`, `logit_bias`: OpenAI caps
 * them at 5,000, 16, 300). 1.4 million members in one object (17 MB) held the event loop for 10 s and more: V8
 * parses such an object slowly, and the schema and every attempt copy it.
 */
export const MAX_JSON_OBJECT_MEMBERS = 10_000;

/**
 * Parts (text fields and files) of one upload (`multipart/form-data`): the audio API has about ten, an image edit up to
 * 16 images, a mask and a dozen fields.
 */
export const MAX_UPLOAD_PARTS = 64;

/**
 * Bytes of one upload part's headers (its `Content-Disposition` with the file's name, its `Content-Type`): a file name
 * is at most a few hundred bytes. Node's multipart parser reads headers byte by byte in JavaScript.
 */
export const MAX_UPLOAD_PART_HEADER_BYTES = 16 * 1024;

/**
 * Characters of one path parameter (`/v1/conversations/{id}/items/{item_id}`, `/v1/responses/{id}`): above every id a
 * route accepts (item ids up to 200). Fastify's default of 100 refused a valid 133-character conversation id with its
 * own message, which quoted the whole path.
 */
export const MAX_PATH_PARAM_CHARS = 256;

/** Model names in one request: the comma-separated `model` plus the `models` fallback array, after dedup. */
export const MAX_REQUESTED_MODELS = 64;

/** Characters in one model name (`model`, an entry of `models`, `?model=` of the route explanation). */
export const MAX_MODEL_NAME_CHARS = 256;

/**
 * Characters of one model field as sent (`model`, comma list included) before it is split: enough for
 * MAX_REQUESTED_MODELS names of MAX_MODEL_NAME_CHARS each, so the split itself stays bounded.
 */
export const MAX_MODEL_FIELD_CHARS = MAX_REQUESTED_MODELS * (MAX_MODEL_NAME_CHARS + 1);

/**
 * Characters one token estimate reads (a whole request: messages, tool calls, tools): ~60 ms of CPU at worst.
 * Beyond it every character counts one token (more than any tokenizer gives text), so the cap only ever raises
 * the estimate; 4 M characters are past every context window but the very largest.
 */
export const MAX_ESTIMATED_CHARS = 4_000_000;

/**
 * Characters of a sticky-session key (`x-session-id`, or the body's `user`, after a short prefix: the endpoint, and a
 * named client's name of at most 64 characters). Longer keys are not remembered: up to 10,000 sessions are kept,
 * so the key length bounds that memory.
 */
export const MAX_SESSION_KEY_CHARS = 512;

/** A client's `x-request-id` is used (in logs and echoed) only up to this length, as printable ASCII. */
export const MAX_CLIENT_REQUEST_ID_CHARS = 128;
