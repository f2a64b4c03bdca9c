/** The svcgate version, printed by `svcgate version`. */
export const VERSION = "0.1.0";
