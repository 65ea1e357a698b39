/**
 * The admin API (docs/admin-api.md): API keys, usage totals and the model catalog. Every route needs
 * the admin token (`WEB_CHAT_TOKEN`); bad input is a 400 that changes nothing.
 */
export const admin = { access: 'admin' } as const;
