import { pino, type Logger } from 'pino';

/** The root logger. One child per component: `logger.child({ component: 'proxy' })`. */
export const logger: Logger = pino({
  level: process.env.SKIFF_LOG_LEVEL ?? (process.env.NODE_ENV === 'test' || process.env.TAP ? 'silent' : 'info'),
  base: { pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
});

export function componentLogger(component: string): Logger {
  return logger.child({ component });
}

export type { Logger };
