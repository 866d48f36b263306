// A response waiting for its turn on a pipelined HTTP/1.1 connection (the answer before it still being written).
import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * Cuts the connection when `response`'s turn comes if it was destroyed while it waited. Such a response has no socket
 * yet, and Node 24 destroys it without touching the connection (`OutgoingMessage.destroy`: no socket, so only its
 * `close`): the pipeline sees the client gone and settles, but when the answer before it ends, Node gives the socket
 * to the destroyed response, hands it what it held, and nothing ever ends it. The client then waits forever on a
 * connection with half an answer, every later request on it stuck behind. A later stream that waited past its
 * `routing.max_stream_duration_ms` (write-stream.ts cuts it as gone) did exactly that. Cut as an attached
 * response's destroy cuts: the connection closes after the answers before it.
 */
export function cutWhenTurnComes(response: ServerResponse): void {
  if (response.socket !== null) return;
  response.once("socket", (socket: Socket) => {
    // Destroyed and not finished: cut. Node assigns the socket before it writes what the response held, so nothing of
    // the cut answer goes out.
    if (response.destroyed && !response.writableFinished) socket.destroy();
  });
}
