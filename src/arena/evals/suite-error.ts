import { ArenaValidationError } from '../arena.js';

/** A suite the server refuses, with a message that says what to change (answered as a 400). */
export class SuiteError extends ArenaValidationError {}
