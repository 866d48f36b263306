// The values of `message_order` (providers/message-order.ts says what each one does to a candidate's messages).
export const MESSAGE_ORDERS = ["any", "strict", "alternate"] as const;
export type MessageOrder = (typeof MESSAGE_ORDERS)[number];
