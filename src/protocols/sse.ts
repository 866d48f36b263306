// Server-Sent Events with named events, as the Responses and Messages protocols send them (the Anthropic SDK
// skips events without an `event:` line).

export function namedEvent(name: string, data: object): string {
  // JSON.stringify never emits a raw line break, so one `data:` line always suffices.
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}
