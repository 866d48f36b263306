// The one logger shape the layers below the server accept (pino's, or a test's). Lines never carry keys.
export interface Logger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}
